"""Reports at a glance: the summary table first, text that fits 80 columns with rounded numbers,
and the hook's summary that says first how the job ended (never cutting that)."""

from __future__ import annotations

import re
import subprocess

import pytest
from doctor_helpers import REPO
from test_doctor_requeue import SRUN_75, TIME_LIMIT, _job
from typer.testing import CliRunner

from tbx_doctor.cli import app
from tbx_doctor.commands.hook import summary_lines
from tbx_doctor.report.render import round_number, tidy

INCIDENT = REPO / "fixtures" / "incident"
LONG_FLOAT = re.compile(r"\d\.\d{7,}")


def _check(*argv: str, columns: int = 80) -> str:
    result = CliRunner().invoke(app, ["check", *argv], env={"COLUMNS": str(columns)})
    assert result.exit_code in (0, 1), result.output
    return result.stdout


def _real_args(real_logs) -> list[str]:
    logs = real_logs / "logs"
    return sorted(str(p) for p in [*logs.glob("*.out.gz"), *logs.glob("*.err")])


@pytest.mark.real_logs
def test_many_real_logs_start_with_the_summary_table_and_fit_80_columns(real_logs):
    text = _check(*_real_args(real_logs))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert " ".join(lines[0].split()) == "job state epochs how it ended verdict main finding"
    first_detail = next(i for i, line in enumerate(lines) if re.match(r"[A-Z]+: job ", line))
    table = "\n".join(lines[:first_detail])
    for job in ("39430799", "39543743", "39685032", "39687560", "39707249", "39748262"):
        assert job in table
    row = next(line for line in lines[:first_detail] if line.startswith("39687560"))
    assert row.split()[:5] == ["39687560", "TIMEOUT", "25-37/50", "time", "limit"]
    assert "(2790/6888)" in table and "warning" in row and "time-limit" in row
    # Computed numbers are rounded outside quoted log lines (evidence lines start with 4 spaces).
    computed = [line for line in lines if not line.startswith("    ")]
    assert not [line for line in computed if LONG_FLOAT.search(tidy_free(line))]


def tidy_free(line: str) -> str:
    """The line without its `quoted` parts (log text is quoted as written)."""
    return "".join(line.split("`")[::2])


@pytest.mark.real_logs
def test_text_follows_the_terminal_width(real_logs):
    wide = _check(*_real_args(real_logs), columns=140).splitlines()
    assert max(len(line) for line in wide) <= 140
    assert max(len(line) for line in wide) > 80


@pytest.mark.real_logs
def test_markdown_starts_with_the_summary(real_logs):
    md = _check(*_real_args(real_logs), "--format", "markdown")
    head = md[: md.index("\n## ")]
    assert head.startswith("| job | state | epochs | how it ended | verdict | main finding |")
    assert "| 39685032 | CANCELLED | 24-25/50 | cancelled in epoch 25 (1050/6888) |" in head


@pytest.mark.real_logs
def test_how_each_real_job_ended(real_logs):
    text = _check(*_real_args(real_logs), columns=200)
    ended = dict(re.findall(r"^[A-Z]+: job (\d+):.*\nended: (.*)$", text, re.M))
    assert ended["39687560"] == (
        "time limit reached in epoch 37 at iteration 2790/6888 (the unsaved part is lost)"
    )
    assert ended["39707249"] == "time limit reached during evaluation after epoch 48"
    assert ended["39430799"] == "time limit reached"  # .out missing: where it stood is unknown
    assert ended["39543743"] == "finished"
    assert ended["39549848"] == "finished (evaluation only)"


def test_round_number_and_tidy():
    assert [round_number(v) for v in (3.179304662536932, 1215.0, 0.00213456, 240.24)] == [
        "3.18",
        "1215",
        "0.00213",
        "240",
    ]
    quoted = "`lr: 0.0001000000`"
    assert tidy(f"mean 3.179304662536932 at {quoted}") == f"mean 3.18 at {quoted}"


@pytest.mark.parametrize("extra_err", [(TIME_LIMIT,), ()])
def test_hook_summary_says_how_the_job_ended_first(tmp_path, extra_err):
    log = _job(tmp_path, SRUN_75[0], extra_err=extra_err)
    result = CliRunner().invoke(app, ["hook", "--log", str(log)])
    lines = result.stdout.splitlines()
    what = "time limit reached" if extra_err else "stopped on SIGUSR1"
    assert lines[0] == (
        f"tbx-doctor: WARNING: job 1234: {what}; progress saved at epoch 0, iteration 3; "
        "continued by job 1235"
    ), lines
    codes = [line.split(": ")[1] for line in lines[1:-1]]
    assert codes[: len(extra_err) + 1] == (["time-limit"] if extra_err else []) + ["requeued"]


def test_hook_never_cuts_the_ending_findings():
    def finding(code: str, severity: str) -> dict:
        return {
            "code": code,
            "severity": severity,
            "title": code,
            "explanation": "",
            "evidence": [],
        }

    others = [finding(f"other-{i}", "warning") for i in range(5)]
    report = {
        "verdict": "warning",
        "files": ["x.out"],
        "run": {"job_id": "7", "end_reason": "time-limit", "epochs": []},
        "findings": [*others, finding("time-limit", "warning"), finding("requeued", "info")],
    }
    lines = summary_lines(report)
    assert [line.split(": ")[1] for line in lines[1:-1]] == [
        "time-limit",
        "requeued",
        "other-0",
        "other-1",
        "other-2",
    ]
    assert lines[-1] == "  (+2 more in the report)"


def test_hook_takes_the_profile_from_the_environment(tmp_path):
    profile = tmp_path / "p.toml"
    profile.write_text('[severity]\nresumed-from-checkpoint = "warning"\n')
    log = tmp_path / "train_tbx11k_39543743.out"
    log.write_text((INCIDENT / "train_tbx11k_39543743.out").read_text())
    plain = CliRunner().invoke(app, ["hook", "--log", str(log)]).stdout
    judged = (
        CliRunner()
        .invoke(app, ["hook", "--log", str(log)], env={"TBX_DOCTOR_PROFILE": str(profile)})
        .stdout
    )
    assert plain.startswith("tbx-doctor: HEALTHY: job 39543743: finished")
    assert judged.startswith("tbx-doctor: WARNING: job 39543743: finished")


def test_job_scripts_pass_the_profile_to_the_hook(tmp_path):
    """scripts/tbx_job.sh's exit trap calls the hook with TBX_DOCTOR_PROFILE when it is set."""
    script = (
        f"source {REPO / 'scripts' / 'tbx_job.sh'}; TBX_PYTHON=echo TBX_EXPECT=resume; "
        "(exit 0); tbx_on_exit"
    )
    env = {"PATH": "/usr/bin:/bin", "TBX_DOCTOR_PROFILE": "/p/tiny.toml"}
    with_profile = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert "-m tbx_doctor hook --expect resume --profile /p/tiny.toml" in with_profile.stdout
    env.pop("TBX_DOCTOR_PROFILE")
    without = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert "-m tbx_doctor hook --expect resume\n" in without.stdout


@pytest.mark.real_logs
def test_a_run_folder_checklist_rounds_log_txt_loss(real_logs):
    text = _check(str(real_logs / "outputs" / "tbx11k_run_39627174"))
    item = next(line for line in text.splitlines() if "Epoch 0 mean loss about" in line)
    # log.txt holds 3.179304662536932; the run that learned passes the defaults (issue 12).
    assert "pass (3.18 at" in item
    assert "3.179304662536932" not in text
