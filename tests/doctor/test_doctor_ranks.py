# ruff: noqa: E501  (log lines quoted whole, as srun, torch and torchelastic print them)
"""Ranks, tasks and nodes (issues 11 item 6 and 15): the first failing rank, task and node named,
a node failure before the tracebacks it caused, nothing of it on a healthy multi-rank run."""

from __future__ import annotations

import re
from pathlib import Path

from doctor_helpers import REPO, codes_of, run_check

from tbx_doctor.facts.build import build_facts
from tbx_doctor.reading.job_files import collect_jobs
from tbx_doctor.report.glance import how_it_ended

MULTINODE = REPO / "fixtures" / "multinode"
NODE_FAIL = MULTINODE / "node-fail" / "train_tbx11k_7.out"  # real 2-node job, tbxn2 killed
HEALTHY = MULTINODE / "two-nodes-healthy" / "train_tbx11k_1.out"
RANK_WORDS = re.compile(r"\b(?:rank|task|[Nn]ode) \w+ (?:failed|ran)|first failing|consequence")
START = "Start Time: Fri Dec  4 16:41:15 UTC 2026\n"
WORLD_2 = (
    "world size: 2, world rank: 0, local rank: 0, device_count: 0\n"
    "world size: 2, world rank: 1, local rank: 0, device_count: 0\n"
)
ITERATION = "Epoch: [0]  [ 0/20]  eta: 0:00:37  lr: 0.000200  loss: 8.5226 (8.5226)  time: 1.0\n"
GLOO = "[rank0]: RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error [10.0.0.2]:9387: Connection reset by peer.\n"


def _facts(log: Path):
    (job,) = collect_jobs([log])
    return build_facts(job, [log])


def _write(tmp_path: Path, text: str, name: str = "slurm-4242.out") -> Path:
    log = tmp_path / name
    log.write_text(text)
    return log


def _traceback(rank: int, exception: str) -> str:
    return (
        f"[rank{rank}]: Traceback (most recent call last):\n"
        f'[rank{rank}]:   File "train.py", line 3, in <module>\n'
        f"{exception if exception.endswith(chr(10)) else exception + chr(10)}"
    )


def test_real_node_failure_names_the_failed_node_and_its_rank_before_the_consequences():
    code, report = run_check(NODE_FAIL)
    assert code == 1
    head = report["findings"][0]
    assert (head["code"], report["run"]["end_reason"]) == ("node-fail", "node-fail")
    # srun's line about the failed node is the evidence, not slurmstepd's on the surviving tbxn1
    assert head["evidence"][0]["text"] == "srun: error: Node failure on tbxn2"
    assert head["evidence"][0]["file"].endswith("train_tbx11k_7.err")
    assert "Node tbxn2 failed first" in head["explanation"]
    assert "the first failing rank is rank 1" in head["explanation"]
    assert "--exclude=tbxn2" in head["fix"]
    # rank 0's gloo traceback and srun's exit line for task 0 on tbxn1 are consequences
    assert "Connection reset by peer" in head["explanation"]
    assert not {"crash-traceback", "task-failed", "nccl-error"} & set(codes_of(report))
    first = report["run"]["first_failure"]
    assert (first["node"], first["ranks"], first["tasks"], first["line"]) == ("tbxn2", [1], [1], 76)


def test_real_node_failure_facts():
    ranks = _facts(NODE_FAIL).ranks
    assert (ranks.world_size, ranks.tasks_are_ranks) == (2, True)
    first = ranks.first
    assert (first.source, first.node, first.ranks, first.tasks) == (
        "node-failure",
        "tbxn2",
        (1,),
        (1,),
    )
    assert first.line.line == 76 and [s.text for s in first.support] == [
        "srun: error: tbxn1: task 0: Exited with exit code 1"
    ]
    assert [c.line for c in ranks.consequences] == [74, 75]


def test_a_healthy_two_node_run_gets_none_of_it():
    ranks = _facts(HEALTHY).ranks
    assert ranks.world_size == 2 and ranks.first is None and not ranks.consequences
    _, report = run_check(HEALTHY)
    assert report["run"]["end_reason"] == "completed"
    assert report["run"]["first_failure"] is None
    assert "error" not in codes_of(report).values()
    assert not any(RANK_WORDS.search(f["explanation"]) for f in report["findings"])


def test_a_healthy_synthetic_two_rank_run_gets_none_of_it(tmp_path):
    text = (
        START
        + "| distributed init (rank 0): env://\n| distributed init (rank 1): env://\n"
        + WORLD_2
        + "Start training\n"
        + ITERATION
        + "Epoch: [0] Total time: 0:00:08 (2.9 s / it)\nTraining time 0:00:09\n"
    )
    log = _write(tmp_path, text)
    assert _facts(log).ranks.first is None
    _, report = run_check(log)
    assert "error" not in codes_of(report).values()
    assert not any(RANK_WORDS.search(f["explanation"]) for f in report["findings"])


def test_node_failure_without_the_placement_names_the_node_only(tmp_path):
    log = _write(
        tmp_path,
        START
        + ITERATION
        + "srun: error: Node failure on gpu17\n"
        + "slurmstepd: error: *** JOB 4242 ON gpu03 CANCELLED AT 2024-01-01T00:00:00 DUE TO NODE FAILURE ***\n",
    )
    _, report = run_check(log)
    head = report["findings"][0]
    assert head["code"] == "node-fail" and head["evidence"][0]["text"].endswith("on gpu17")
    assert "Node gpu17 failed first" in head["explanation"]
    assert "which ranks ran on it these files do not show" in head["explanation"]
    assert "rank 0" not in head["explanation"] and "rank 1" not in head["explanation"]


def test_a_fragment_ending_in_a_node_failure_does_not_claim_no_training(tmp_path):
    log = _write(tmp_path, "srun: error: Node failure on gpu17\n", "log.txt")
    _, report = run_check(log)
    assert report["run"]["training"] == "unknown"
    assert how_it_ended(report) == "node failure"


def test_nccl_errors_of_the_surviving_ranks_follow_a_node_failure(tmp_path):
    log = _write(
        tmp_path,
        START
        + WORLD_2
        + ITERATION
        + _traceback(
            0,
            "[rank0]: torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, remote process exited or there was a network error",
        )
        + "srun: error: n1: task 0: Exited with exit code 1\n"
        + "srun: error: Node failure on n2\n",
    )
    _, report = run_check(log)
    assert report["run"]["end_reason"] == "node-fail", report["findings"]
    assert not {"nccl-error", "crash-traceback", "task-failed"} & set(codes_of(report))
    assert "the first failing rank is rank 1" in report["findings"][0]["explanation"]


def test_the_rank_that_raised_first_is_the_cause_not_the_one_that_lost_its_peer(tmp_path):
    log = _write(
        tmp_path,
        START
        + WORLD_2
        + ITERATION
        + _traceback(0, GLOO)
        + _traceback(1, "[rank1]: ValueError: boxes must be (x0, y0, x1, y1)"),
    )
    _, report = run_check(log)
    crash = next(f for f in report["findings"] if f["code"] == "crash-traceback")
    assert "[rank1]: ValueError" in crash["explanation"].split(";")[0]
    assert "The first failing rank is rank 1" in crash["explanation"]
    assert "Connection reset by peer" in crash["explanation"].split("consequence")[1]


def test_srun_teardown_comes_after_the_task_that_failed_first(tmp_path):
    log = _write(
        tmp_path,
        START
        + ITERATION
        + "srun: error: n4: tasks 1-3: Terminated\n"
        + "srun: error: n4: task 0: Segmentation fault (core dumped)\n",
    )
    first = _facts(log).ranks.first
    assert (first.tasks, first.node, first.source) == ((0,), "n4", "srun")
    _, report = run_check(log)
    failed = next(f for f in report["findings"] if f["code"] == "task-failed")
    assert "The first failing task is task 0 on n4: Segmentation fault" in failed["explanation"]
    assert "tasks 1-3: Terminated" in failed["explanation"]  # named as the consequence


def test_torchelastic_root_cause_names_the_rank_and_its_host(tmp_path):
    block = (
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n"
        "Failures:\n[1]:\n  time      : 2024-07-24_11:39:43\n  host      : node-b\n"
        "  rank      : 5 (local_rank: 1)\n  exitcode  : -9 (pid: 12)\n"
        "Root Cause (first observed failure):\n[0]:\n  time      : 2024-07-24_11:39:40\n"
        "  host      : node-a\n  rank      : 2 (local_rank: 2)\n  exitcode  : 1 (pid: 11)\n"
    )
    log = _write(tmp_path, block)
    first = _facts(log).ranks.first
    assert (first.ranks, first.local_rank, first.node) == ((2,), 2, "node-a")
    _, report = run_check(log)
    failed = next(f for f in report["findings"] if f["code"] == "task-failed")
    assert "names rank 2 (local rank 2) on node-a as the first failure" in failed["explanation"]
