"""History as a new user meets it: the README's `history logs/ outputs/`, jobs known only by
their .err, evaluation jobs, integer CSV epochs, `.log` files, a table that fits 80 columns."""

from __future__ import annotations

import shutil

import pytest
from history_helpers import iteration, real_logs_dir, tbx_log
from typer.testing import CliRunner

from tbx_doctor.cli import app
from tbx_doctor.history.chain import build_chains
from tbx_doctor.history.render import cells
from tbx_doctor.history.rows import build_history

real_logs = pytest.mark.real_logs


def _history(*argv: str, columns: int = 80) -> str:
    result = CliRunner().invoke(app, ["history", *argv], env={"COLUMNS": str(columns)})
    assert result.exit_code in (0, 1), result.output
    return result.stdout


@real_logs
def test_readme_history_of_logs_and_a_folder_of_run_folders_fits_80_columns():
    root = real_logs_dir()
    text = _history(str(root / "logs"), str(root / "outputs"))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "9 jobs (7 training) in 2 chain(s)" in text
    assert "missing-epochs" not in text
    assert "(left out at this width:" in text


@real_logs
def test_jobs_known_only_by_their_err_sort_by_end_and_show_unknown_epochs(tmp_path):
    root = real_logs_dir()
    for name in (
        "train_tbx11k_39430799.err",
        "train_tbx11k_39487851.err",
        "train_tbx11k_39543743.err",
        "train_tbx11k_39543743.out.gz",
        "train_tbx11k_39627174.err",
    ):
        shutil.copy(root / "logs" / name, tmp_path)  # no outputs/: log.txt is not there
    rows = build_chains(build_history([tmp_path])).rows
    assert [r.job_id for r in rows] == ["39430799", "39487851", "39543743", "39627174"]
    unknown = next(r for r in rows if r.job_id == "39627174")
    assert unknown.start is None and cells(unknown)[6] == "?"


@real_logs
def test_evaluation_jobs_show_their_ap_and_are_not_resumes():
    rows = {r.job_id: r for r in build_history([real_logs_dir() / "logs"])}
    row = rows["39549848"]
    shown = cells(row)
    assert shown[5] == "evaluates 39543743"
    assert row.last_ap == pytest.approx(0.002) and shown[10] == "0.2%"


@real_logs
def test_min_per_epoch_is_training_time_in_every_row():
    rows = {r.job_id: r for r in build_history([real_logs_dir()])}
    # From the .out's `Total time` lines (15-16 min), never log.txt's epoch_time (19-20 min,
    # evaluation included), which is kept apart as each epoch's wall_seconds.
    assert 14 * 60 < rows["39687560"].seconds_per_epoch < 17 * 60
    assert rows["39430799"].seconds_per_epoch is None  # only log.txt: unknown, not 19.3
    assert cells(rows["39430799"])[8] == "?" and cells(rows["39687560"])[8] == "15.2"
    assert rows["39430799"].epochs[0].wall_seconds > 18 * 60


@real_logs
def test_csv_epochs_are_integers():
    text = _history(str(real_logs_dir()), "--format", "csv")
    header, *lines = text.strip().splitlines()
    columns = header.split(",")
    first = columns.index("first_epoch")
    values = {line.split(",")[first] for line in lines}
    assert "0" in values and not [v for v in values if "." in v]


def test_dot_log_files_are_read_as_check_reads_them(tmp_path):
    (tmp_path / "train_100.log").write_text(tbx_log("100", None, range(0, 2)))
    rows = build_history([tmp_path])
    assert [(r.job_id, r.first_epoch, r.last_epoch) for r in rows] == [("100", 0, 1)]


def test_a_job_killed_in_its_first_epoch_loses_all_its_time(tmp_path):
    lines = tbx_log("300", None, range(0, 0), end="").splitlines()[:-2]
    lines += [iteration(0, i, 20, 2.0) for i in range(5)]
    lines += ["End Time: Mon Nov 17 12:00:00 MST 2025"]
    (tmp_path / "train_300.out").write_text("\n".join(lines) + "\n")
    (tmp_path / "train_300.err").write_text(
        "slurmstepd: error: *** JOB 300 ON n1 CANCELLED AT 2025-11-17T12:00:00 DUE TO TIME "
        "LIMIT ***\n"
    )
    (row,) = build_history([tmp_path])
    assert row.ending == "time limit" and row.wall_seconds == 7200
    assert row.lost_seconds == 7200


def test_a_finished_epoch_then_a_kill_loses_the_partial_epoch_only(tmp_path):
    lines = tbx_log("301", None, range(0, 1), end="").splitlines()[:-2]
    lines += [iteration(1, i, 20, 2.0) for i in range(10)]
    (tmp_path / "train_301.out").write_text("\n".join(lines) + "\n")
    (tmp_path / "train_301.err").write_text(
        "slurmstepd: error: *** JOB 301 ON n1 CANCELLED AT 2025-11-17T12:00:00 DUE TO TIME "
        "LIMIT ***\n"
    )
    (row,) = build_history([tmp_path])
    assert row.seconds_per_epoch == 20 * 60  # epoch_lines' `Total time: 0:20:00`
    assert row.lost_seconds == pytest.approx(20 * 60 * 10 / 20)
