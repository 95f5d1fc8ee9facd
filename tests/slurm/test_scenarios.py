"""Issue 7's scenarios end to end: the shipped sbatch scripts, tbx-train and the doctor's hook
on a real SLURM cluster. All jobs are submitted by one fixture and run at the same time; each
test waits for its own job(s) and reads the final state from `scontrol show job -o`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tbx_doctor.commands.hook import summary_lines
from tbx_doctor.report.glance import how_it_ended

from .cluster import LocalCluster
from .project import hook_report, run_tool
from .scenarios import Scenario, Scenarios, chain_successor, follow_chain, submit_all

pytestmark = pytest.mark.slurm
STOPPED = re.compile(r"Interrupted by SIG(USR1|TERM): saved checkpoint \S+ \(epoch \d+, iteration")
RESUMED = re.compile(r"Resuming from checkpoint: \S+ \(epoch \d+(, iteration \d+)?\)")
# What a healthy tiny synthetic run looks like; the built-in expectations are the real TBX11K's.
TINY_PROFILE = Path(__file__).with_name("tiny_profile.toml")
WAIT = 420  # seconds; generous: the machine running the suite may be shared


@pytest.fixture(scope="module")
def scenarios(slurm_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Scenarios:
    return submit_all(slurm_cluster, tmp_path_factory.mktemp("scenarios"))


def _codes(report: dict) -> set[str]:
    return {finding["code"] for finding in report["findings"]}


def _check_json(log: Path, *options: str) -> dict:
    done = run_tool("tbx_doctor", "check", "--format", "json", *options, str(log))
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def _hook_summary_is_last(s: Scenario, job_id: int) -> dict:
    """The hook's summary ends the job's `.out`, matches the JSON it wrote and says first how
    the job ended; returns that JSON."""
    out = s.logs(job_id)[0]
    report = hook_report(s.project, job_id)
    expected = [*summary_lines(report), f"  report: {out.with_suffix('.doctor.json')}"]
    tail = out.read_text().splitlines()[-len(expected) :]
    assert tail == expected, tail
    assert tail[0].startswith(f"tbx-doctor: {report['verdict'].upper()}: job {job_id}: ")
    assert tail[0].removeprefix(f"tbx-doctor: {report['verdict'].upper()}: job {job_id}: ") == (
        how_it_ended(report)
    )
    return report


def test_cancelled_job_still_gets_its_verdict(slurm_cluster, scenarios):
    s = scenarios.cancelled
    info = slurm_cluster.wait_final(s.job_id, WAIT)
    assert info["JobState"] == "CANCELLED", info
    slurm_line = f"*** JOB {s.job_id} ON {slurm_cluster.layout.node} CANCELLED AT"
    assert slurm_line in s.logs()[1].read_text()
    report = _hook_summary_is_last(s, s.job_id)
    assert report["run"]["end_reason"] == "cancelled"
    (finding,) = [f for f in report["findings"] if f["code"] == "cancelled"]
    assert any(slurm_line in e["text"] for e in finding["evidence"]), finding


def test_cancel_saves_but_does_not_continue_the_chain(slurm_cluster, scenarios):
    s = scenarios.cancelled
    slurm_cluster.wait_final(s.job_id, WAIT)
    out = s.logs()[0]
    successor = chain_successor(out)
    if successor is not None:
        slurm_cluster.cancel(successor)  # do not let it train for the rest of the suite
    # A cancel is the user's decision: save what was trained, but submit nothing to continue.
    assert successor is None, out.read_text()
    text = out.read_text()
    assert "Interrupted by SIGTERM: saved checkpoint" in text
    assert f"resume with TBX_RESUME={s.run_dir() / 'checkpoint.pth'}" in text


def test_corrupt_image_fails_with_a_data_error(slurm_cluster, scenarios):
    s = scenarios.crash
    info = slurm_cluster.wait_final(s.job_id, WAIT)
    assert (info["JobState"], info["ExitCode"]) == ("FAILED", "1:0"), info
    train = json.loads((s.project / "data/TBX11K/annotations/json/TBX11K_train.json").read_text())
    name = Path(train["images"][0]["file_name"]).name
    report = _hook_summary_is_last(s, s.job_id)
    assert report["verdict"] == "failed"
    (finding,) = [f for f in report["findings"] if f["code"] == "data-error"]
    assert name in json.dumps(finding["evidence"]), finding


def test_two_tasks_train_together_and_log_once(slurm_cluster, scenarios):
    s = scenarios.two_tasks
    info = slurm_cluster.wait_final(s.job_id, WAIT)
    out = s.logs()[0]
    text = out.read_text()
    assert (info["JobState"], info["ExitCode"], info["NumTasks"]) == ("COMPLETED", "0:0", "2")
    assert "Run plan: mode=fresh" in text and " world_size=2 " in text
    for once in ("Start training", "Epoch: [0]  [0/", "Epoch: [1]  [0/", "Training time"):
        assert text.count(once) == 1, once  # rank 0 alone logs
    assert len((s.run_dir() / "log.txt").read_text().splitlines()) == 2
    report = _hook_summary_is_last(s, s.job_id)
    assert not [f for f in report["findings"] if f["severity"] == "error"], report["findings"]
    assert _check_json(out, "--profile", str(TINY_PROFILE))["verdict"] == "healthy"


def test_fresh_run_completes_with_a_healthy_verdict(slurm_cluster, scenarios):
    s = scenarios.fresh
    info = slurm_cluster.wait_final(s.job_id, WAIT)
    out = s.logs()[0]
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0"), out.read_text()
    assert "Training from scratch" in out.read_text()
    assert (s.run_dir() / "checkpoint.pth").is_file()
    assert len((s.run_dir() / "log.txt").read_text().splitlines()) == 2  # one line per epoch
    report = _hook_summary_is_last(s, s.job_id)
    # The job scripts pass TBX_DOCTOR_PROFILE (tiny_profile.toml here) to the hook.
    assert report["verdict"] == "healthy", report["findings"]
    assert _check_json(out, "--profile", str(TINY_PROFILE))["verdict"] == "healthy"


def test_resubmitting_a_finished_run_is_refused(slurm_cluster, scenarios):
    s = scenarios.refused
    info = slurm_cluster.wait_final(s.job_id, WAIT)
    out, err = s.logs()
    text = out.read_text() + err.read_text()
    assert (info["JobState"], info["ExitCode"]) == ("FAILED", "3:0"), text
    assert "Run plan refused:" in text
    assert "Start training" not in text
    assert "completed successfully" not in text.lower()
    report = _hook_summary_is_last(s, s.job_id)
    assert report["verdict"] == "failed"
    assert _codes(report) & {"zero-epochs", "immediate-exit", "config-error"}, report["findings"]


def test_time_limit_stops_saves_and_the_chain_finishes(slurm_cluster, scenarios):
    s = scenarios.time_limit
    records = follow_chain(slurm_cluster, s, WAIT)
    first, last = records[0], records[-1]
    first_out = s.logs()[0].read_text()
    assert len(records) >= 2, first_out
    assert first["TimeLimit"] == "00:01:00"
    # Stopped by SLURM's USR1 warning (FAILED 75) or its time-limit TERM (TIMEOUT 75).
    assert (first["JobState"], first["ExitCode"]) in {("FAILED", "75:0"), ("TIMEOUT", "75:0")}
    assert STOPPED.search(first_out), first_out
    first_report = _hook_summary_is_last(s, s.job_id)
    assert "requeued" in _codes(first_report)
    # The summary's first line tells the ending: saved where, continued by which job.
    ending = how_it_ended(first_report)
    assert "progress saved at epoch " in ending, ending
    assert ending.endswith(f"continued by job {records[1]['JobId']}"), ending
    last_id = int(last["JobId"])
    last_out = s.logs(last_id)[0].read_text()
    assert last["JobState"] == "COMPLETED", last_out
    assert RESUMED.search(last_out), last_out
    assert "resumed-from-checkpoint" in _codes(_hook_summary_is_last(s, last_id))
    _assert_history_shows_the_chain(s, [int(r["JobId"]) for r in records])


def _assert_history_shows_the_chain(s: Scenario, job_ids: list[int]) -> None:
    """`tbx-doctor history` on the logs: one chain, stopped -> saved -> resumed -> finished."""
    done = run_tool("tbx_doctor", "history", "--format", "json", str(s.project / "logs"))
    assert done.returncode in (0, 1), done.stderr
    history = json.loads(done.stdout)
    assert [chain["jobs"] for chain in history["chains"]] == [[str(j) for j in job_ids]]
    assert history["problems"] == []
    jobs = {job["job_id"]: job for job in history["jobs"]}
    first, last = jobs[str(job_ids[0])], jobs[str(job_ids[-1])]
    assert first["ending"] in ("requeued", "time limit"), first
    assert (last["ending"], last["path"]) == ("finished", "resume"), last
    assert last["source_job"] == str(job_ids[-2])


def test_time_limit_chain_ends_with_the_uninterrupted_weights(slurm_cluster, scenarios):
    import torch

    s = scenarios.time_limit
    last_id = int(follow_chain(slurm_cluster, s, WAIT)[-1]["JobId"])
    slurm_cluster.wait_final(scenarios.fresh.job_id, WAIT)
    resumed = torch.load(s.run_dir(last_id) / "checkpoint.pth", weights_only=True)["model"]
    reference_path = scenarios.fresh.run_dir() / "checkpoint.pth"
    reference = torch.load(reference_path, weights_only=True)["model"]
    assert resumed.keys() == reference.keys()
    differ = [k for k, v in reference.items() if not torch.equal(resumed[k], v)]
    assert not differ, f"{len(differ)} tensors differ from the uninterrupted run, e.g. {differ[:3]}"


def test_time_limit_warning_during_start_up_is_not_lost(slurm_cluster, scenarios):
    s = scenarios.early_warning
    info = slurm_cluster.wait_final(s.job_id, WAIT)
    out = s.logs()[0]
    successor = chain_successor(out)
    if successor is not None:
        slurm_cluster.cancel(successor)  # the continuation itself is the time-limit scenario's
    assert info["ExitCode"] == "75:0", out.read_text()  # stopped for the chain, not killed
    assert (s.run_dir() / "checkpoint.pth").is_file()
    assert successor is not None
