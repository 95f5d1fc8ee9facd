"""Iterations per epoch: a profile expectation (checklist item) and, along a resume, a sign
that the strategy changed even when neither log prints it."""

from __future__ import annotations

from pathlib import Path

import pytest
from doctor_helpers import codes_of, run_check
from doctor_logtext import banner, ending, epoch_lines, healthy, resumed, write_log

from tbx_doctor.profile.expectations import ProfileError, load_profile


def _source(tmp_path, n: int = 40) -> None:
    """Job 900 trained epochs 0-1 (n iterations each) without printing its strategy."""
    lines = [*banner(900), "Start training", *epoch_lines(0, n=n), *epoch_lines(1, n=n)]
    write_log(tmp_path, "train_900.out", [*lines, *ending()])


def _resumed_with(tmp_path, n: int):
    lines = resumed(1001, 900, 2, 4)
    lines = [line.replace("/40]", f"/{n}]") for line in lines]  # the same epochs, N changed
    return write_log(tmp_path, "train_1001.out", lines)


def test_changed_iterations_along_a_resume_is_a_strategy_change(tmp_path):
    _source(tmp_path)
    _, report = run_check(_resumed_with(tmp_path, 20))
    finding = next(f for f in report["findings"] if f["code"] == "resume-strategy-mismatch")
    assert finding["title"] == "The resume changed the iterations per epoch"
    assert "Source run (job 900's log): 40 iterations per epoch" in finding["explanation"]
    assert "this job: 20 (" in finding["explanation"]
    files = [Path(e["file"]).name for e in finding["evidence"]]
    assert files == ["train_1001.out", "train_900.out"]


def test_same_iterations_along_a_resume_is_no_finding(tmp_path):
    _source(tmp_path)
    _, report = run_check(_resumed_with(tmp_path, 40))
    assert "resume-strategy-mismatch" not in codes_of(report)
    assert report["run"]["source_job_id"] == "900"


def _profile(tmp_path, body: str):
    path = tmp_path / "p.toml"
    path.write_text(body)
    return path


def test_profile_iterations_per_epoch_is_a_checklist_item(tmp_path):
    log = write_log(tmp_path, "train_1001.out", healthy())
    inside = _profile(tmp_path, "[job]\niterations_per_epoch = [40, 40]\n")
    _, report = run_check(log, "--profile", inside)
    item = report["checklist"][-1]
    assert item["item"] == "Iterations per epoch 40-40 (same data, same batch size x GPUs)"
    assert item["status"] == "pass" and item["evidence"].startswith("epoch 0: 40 (")
    outside = _profile(tmp_path, "[job]\niterations_per_epoch = [1100, 1200]\n")
    _, report = run_check(log, "--profile", outside)
    assert report["checklist"][-1]["status"] == "fail"
    _, report = run_check(log)  # no expectation by default: the six items of the write-up
    assert len(report["checklist"]) == 6


def test_profile_iterations_per_epoch_schema(tmp_path):
    assert load_profile().iterations_per_epoch is None
    profile = load_profile(_profile(tmp_path, "[job]\niterations_per_epoch = [10, 12]\n"))
    assert profile.iterations_per_epoch == (10.0, 12.0)
    with pytest.raises(ProfileError, match="iterations_per_epoch must be a list of two numbers"):
        load_profile(_profile(tmp_path, "[job]\niterations_per_epoch = 10\n"))
