"""Wording a new user met first: no "after unknown", no "ending in no exception line", no
"iteration -1/None", no `file:0`, "trained epoch 49" (not "Epochs ...: 49"), the job id in
`sacct`, `[watch only]` shown in `codes --help`, the scripts' own --signal advice."""

from __future__ import annotations

import pytest
from doctor_helpers import REPO, run_check
from doctor_logtext import banner, epoch_lines, write_log
from typer.testing import CliRunner

from tbx_doctor.cli import app
from tbx_doctor.reading.logscan import Line
from tbx_doctor.rules.describe import where

INCIDENT = REPO / "fixtures" / "incident"


def _texts(report: dict) -> str:
    parts = [f["title"] + " " + f["explanation"] + " " + f["fix"] for f in report["findings"]]
    return " ".join(parts) + " ".join(i["evidence"] for i in report["checklist"])


def test_immediate_exit_without_times_does_not_say_after_unknown(tmp_path):
    log = write_log(tmp_path, "train_5.out", ["Start training", "Training time 0:00:00"])
    _, report = run_check(log)
    titles = [f["title"] for f in report["findings"] if f["code"] == "immediate-exit"]
    assert titles == ["The job exited without training"]
    assert "unknown without" not in _texts(report)


def test_traceback_without_exception_line(tmp_path):
    lines = [*banner(6), "Start training", "Traceback (most recent call last):", '  File "x"']
    _, report = run_check(write_log(tmp_path, "train_6.out", lines))
    crash = next(f for f in report["findings"] if f["code"] == "crash-traceback")
    assert "ending in no exception" not in crash["explanation"]
    assert "with no exception line after it" in crash["explanation"]


def test_an_epoch_cut_before_its_first_iteration_line(tmp_path):
    lines = [*banner(7), "Start training", *epoch_lines(0, n=4)]
    lines.append("Epoch: [1]  [")  # epoch 1 begun, its iteration line cut by the kill
    write_log(tmp_path, "train_7.err", ["slurmstepd: error: *** JOB 7 ON n CANCELLED AT "
                                        "2025-11-17T12:00:00 DUE TO TIME LIMIT ***"])  # fmt: skip
    _, report = run_check(write_log(tmp_path, "train_7.out", lines))
    assert "-1/" not in _texts(report) and "/None" not in _texts(report)


def test_whole_file_evidence_has_no_line_zero():
    assert where(Line("run/config_args_all.json", 0, "x")) == "run/config_args_all.json"
    assert where(Line("a.out", 3, "x")) == "a.out:3"


@pytest.mark.real_logs
def test_resumed_finding_says_trained_epoch(real_logs):
    _, report = run_check(real_logs / "logs" / "train_tbx11k_39543743.out.gz")
    resumed = next(f for f in report["findings"] if f["code"] == "resumed-from-checkpoint")
    assert "This job trained epoch 49." in resumed["explanation"]
    _, report = run_check(real_logs / "logs" / "train_tbx11k_39687560.out.gz")
    resumed = next(f for f in report["findings"] if f["code"] == "resumed-from-checkpoint")
    assert "This job trained epochs 25-37." in resumed["explanation"]


@pytest.mark.real_logs
def test_sacct_names_the_job_and_signal_advice_matches_the_scripts(real_logs):
    _, report = run_check(real_logs / "logs" / "train_tbx11k_39685032.out.gz")
    cancelled = next(f for f in report["findings"] if f["code"] == "cancelled")
    assert "sacct -j 39685032 " in cancelled["fix"] and "JOBID" not in cancelled["fix"]
    _, report = run_check(real_logs / "logs" / "train_tbx11k_39687560.out.gz")
    limit = next(f for f in report["findings"] if f["code"] == "time-limit")
    assert "--signal=B:USR1@120" in limit["fix"] and "USR1@300" not in limit["fix"]


def test_codes_help_shows_watch_only():
    result = CliRunner().invoke(app, ["codes", "--help"], env={"COLUMNS": "200"})
    assert "marked [watch only]" in result.output
