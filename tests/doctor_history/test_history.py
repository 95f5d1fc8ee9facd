"""`tbx-doctor history`: rows, the resume chain and its problems, over real and small logs."""

from __future__ import annotations

import json

import pytest
from history_helpers import REPO, real_history, real_logs_dir, tbx_log
from typer.testing import CliRunner

from tbx_doctor.cli import app
from tbx_doctor.history.chain import build_chains
from tbx_doctor.history.rows import build_history

real_logs = pytest.mark.real_logs
JOB_FIELDS = [
    "job_id",
    "kind",
    "start",
    "end",
    "wall_seconds",
    "wall_estimated",
    "gpus",
    "ending",
    "ending_detail",
    "path",
    "source_checkpoint",
    "source_job",
    "source_epoch",
    "epochs_planned",
    "first_epoch",
    "last_epoch",
    "last_epoch_finished",
    "iterations_per_epoch",
    "iterations",
    "seconds_per_epoch",
    "last_loss",
    "last_ap",
    "last_ap50",
    "last_ema_ap",
    "effective_batch",
    "strategy",
    "lost_seconds",
    "verdict",
    "findings",
    "files",
    "output_dir",
    "epochs",
]


def _rows(history):
    return {r.job_id: r for r in history.rows}


@real_logs
def test_real_chain_of_four_jobs_with_epochs_and_endings():
    history = real_history()
    chain = next(c for c in history.chains if c.jobs[0] == "39627174")
    assert chain.jobs == ("39627174", "39685032", "39687560", "39707249")
    rows = _rows(history)
    expected = {
        "39627174": (0, 23, "time limit", None),
        "39685032": (24, 25, "cancelled", "in epoch 25 at 1050/6888"),
        "39687560": (25, 37, "time limit", "in epoch 37 at 2790/6888"),
        "39707249": (37, 48, "time limit", "during evaluation of epoch 48"),
    }
    for job, (first, last, ending, detail) in expected.items():
        row = rows[job]
        assert (row.first_epoch, row.last_epoch, row.ending, row.ending_detail) == (
            first,
            last,
            ending,
            detail,
        ), job
    assert [(link.source_job, link.job) for link in chain.links] == [
        ("39627174", "39685032"),
        ("39685032", "39687560"),
        ("39687560", "39707249"),
    ]
    # Epochs 0-48 finished: 49 of the 50 planned.
    assert (chain.epochs_reached, chain.epochs_planned) == (49, 50)
    # Work cut by the cancel (1051 of 6888 iterations) and the time limit (2791) was lost.
    lost = rows["39685032"].lost_seconds + rows["39687560"].lost_seconds
    assert chain.hours_lost == pytest.approx(lost / 3600) and 0.1 < chain.hours_lost < 0.2


@real_logs
def test_real_39543743_resumed_39487851_and_finished_the_plan():
    history = real_history()
    row = _rows(history)["39543743"]
    assert (row.path, row.source_job, row.first_epoch, row.ending) == (
        "resume",
        "39487851",
        49,
        "finished",
    )
    chain = next(c for c in history.chains if "39543743" in c.jobs)
    assert chain.jobs == ("39430799", "39487851", "39543743")
    assert (chain.epochs_reached, chain.epochs_planned) == (50, 50)
    kinds = {(p.kind, p.jobs) for p in history.problems}
    # 39487851 resumed 39430799's checkpoint at epoch 25: 39430799 trained epoch 24 and was
    # killed while evaluating it (log.txt is written after evaluation), not a gap.
    assert ("missing-epochs", ("39430799", "39487851")) not in kinds
    first = _rows(history)["39430799"]
    assert (first.last_epoch, first.ending, first.ending_detail) == (
        24,
        "time limit",
        "during evaluation of epoch 24",
    )
    assert ("gap", ("39748262",)) in kinds


@real_logs
def test_real_eval_jobs_are_rows_not_chain_members():
    history = real_history()
    rows = _rows(history)
    assert rows["39549848"].kind == "eval" and rows["39549848"].source_job == "39543743"
    assert all("39549848" not in c.jobs for c in history.chains)


@real_logs
def test_cli_json_fields_and_exit_code_on_real_logs():
    result = CliRunner().invoke(app, ["history", str(real_logs_dir()), "--format", "json"])
    assert result.exit_code == 1, result.output  # the first chain's AP collapsed (error)
    data = json.loads(result.stdout)
    assert set(data) == {"schema", "jobs", "chains", "problems", "overall", "curves"}
    assert data["schema"] == "tbx-doctor.history/1"
    job = next(j for j in data["jobs"] if j["job_id"] == "39707249")
    assert set(job) == set(JOB_FIELDS)
    assert set(job["epochs"][0]) == {
        "epoch", "finished", "loss", "ap", "ap50", "ema_ap", "seconds", "wall_seconds"
    }  # fmt: skip
    assert (job["ending"], job["ending_detail"], job["first_epoch"], job["last_epoch"]) == (
        "time limit",
        "during evaluation of epoch 48",
        37,
        48,
    )
    assert job["source_job"] == "39687560" and job["iterations_per_epoch"] == 6888
    chain = next(c for c in data["chains"] if c["jobs"][0] == "39627174")
    assert set(chain) == {"jobs", "links", "epochs_reached", "epochs_planned", "gpu_hours",
                          "hours_lost", "jobs_without_wall_time"}  # fmt: skip
    assert set(data["problems"][0]) == {"kind", "jobs", "text"}
    assert set(data["overall"]) == {"jobs", "training_jobs", "chains", "gpu_hours",
                                    "hours_lost", "jobs_without_wall_time"}  # fmt: skip
    assert data["overall"]["jobs"] == 9 and data["overall"]["chains"] == 2


@real_logs
def test_cli_csv_has_one_row_per_job(tmp_path):
    result = CliRunner().invoke(app, ["history", str(real_logs_dir()), "--format", "csv"])
    lines = result.stdout.strip().splitlines()
    # Exit 1: the first chain's AP collapsed (ap-collapsed is an error).
    assert result.exit_code == 1 and lines[0].startswith("job_id,kind,start,wall_seconds,ending")
    assert len(lines) == 1 + 9


def test_incident_zero_epoch_job_is_linked_and_fails():
    result = CliRunner().invoke(
        app, ["history", str(REPO / "fixtures" / "incident"), "--format", "json"]
    )
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    rows = {j["job_id"]: j for j in data["jobs"]}
    assert rows["39581627"]["ending"] == "zero epochs"
    assert rows["39581627"]["source_job"] == "39543743"
    assert data["chains"][0]["jobs"] == ["39543743", "39581627"]
    # The whole zero-epoch job is lost GPU time.
    assert data["overall"]["hours_lost"] == pytest.approx(rows["39581627"]["wall_seconds"] / 3600)
    assert {p["kind"] for p in data["problems"]} >= {"zero-epochs", "gap"}


def test_fork_and_strategy_change_are_reported(tmp_path):
    (tmp_path / "t_100.out").write_text(tbx_log("100", None, range(0, 2)))
    (tmp_path / "t_101.out").write_text(tbx_log("101", "100", range(2, 4), accum=1))
    (tmp_path / "t_102.out").write_text(tbx_log("102", "100", range(2, 3)))
    (tmp_path / "t_103.out").write_text(tbx_log("103", "101", range(3, 4), accum=1))
    history = build_chains(build_history([tmp_path]))
    kinds = {(p.kind, p.jobs) for p in history.problems}
    # 101 finished epoch 3; 103 trained epoch 3 again.
    assert ("repeated-epochs", ("101", "103")) in kinds
    assert ("fork", ("100", "101", "102")) in kinds
    assert ("strategy-change", ("100", "101")) in kinds
    assert ("strategy-change", ("100", "102")) not in kinds
    assert len(history.chains) == 1
    assert history.chains[0].jobs == ("100", "101", "103", "102")


def test_missing_path_is_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["history", str(tmp_path / "nope_*.out")])
    assert result.exit_code == 2 and "matches no file" in result.output


@real_logs
def test_a_job_given_as_log_and_output_dir_is_one_row_from_the_log():
    root = real_logs_dir()
    rows = build_history(
        [root / "outputs" / "tbx11k_run_39707249", root / "logs" / "train_tbx11k_39707249.out.gz"]
    )
    assert len(rows) == 1
    row = rows[0]
    assert row.iterations == 82656 and row.ending_detail == "during evaluation of epoch 48"
    assert row.last_ap50 is not None  # log.txt still completes the row
