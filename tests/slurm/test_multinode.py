"""Issue 15: the multi-node path on two "nodes" of this machine (tests/slurm/multinode.py).

The jobs of the first three tests run at the same time; the node failure runs after them, alone.
Each test prints its scenario's wall time (from submission to the last job's end).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from .multinode import NODE_NAMES, TwoNodeCluster
from .multinode_scenarios import MultiNodeScenarios, NodeFailure, Timed, fail_a_node, submit_all
from .project import run_tool
from .scenarios import follow_chain

pytestmark = [pytest.mark.slurm, pytest.mark.multinode]
WAIT = 420  # seconds; generous: the machine running the suite may be shared
STOPPED = re.compile(r"Interrupted by SIGUSR1: saved checkpoint \S+ \(epoch \d+, iteration")
RESUMED = re.compile(r"Resuming from checkpoint: \S+ \(epoch \d+(, iteration \d+)?\)")


@pytest.fixture(scope="module")
def scenarios(
    slurm_two_nodes: TwoNodeCluster, tmp_path_factory: pytest.TempPathFactory
) -> MultiNodeScenarios:
    return submit_all(slurm_two_nodes, tmp_path_factory.mktemp("multinode"))


@pytest.fixture(scope="module")
def node_failure(slurm_two_nodes: TwoNodeCluster, scenarios: MultiNodeScenarios) -> NodeFailure:
    """Runs once every other job has ended: a dead node would end them too."""
    for s in (scenarios.two_nodes, scenarios.one_node, scenarios.one_process, scenarios.reference):
        slurm_two_nodes.wait_final(s.job_id, WAIT)
    follow_chain(slurm_two_nodes, scenarios.time_limit, WAIT)
    data = scenarios.reference.project / "data" / "TBX11K"
    return fail_a_node(slurm_two_nodes, scenarios.reference.project.parent, data, WAIT)


def _tensors(tree: object, prefix: str = "") -> dict[str, object]:
    """Every tensor in a nested checkpoint entry, by path."""
    if isinstance(tree, Mapping):
        found: dict[str, object] = {}
        for key, value in tree.items():
            found.update(_tensors(value, f"{prefix}/{key}"))
        return found
    if isinstance(tree, list | tuple):
        return {
            k: v for i, item in enumerate(tree) for k, v in _tensors(item, f"{prefix}/{i}").items()
        }
    return {prefix: tree} if hasattr(tree, "dtype") else {}


def _differences(a: Path, b: Path) -> list[str]:
    """Paths of the model and optimizer tensors that are not bit-for-bit equal in `a` and `b`."""
    import torch

    left, right = (torch.load(p, weights_only=True) for p in (a, b))
    ours = _tensors({"model": left["model"], "optimizer": left["optimizer"]["state"]})
    theirs = _tensors({"model": right["model"], "optimizer": right["optimizer"]["state"]})
    assert ours.keys() == theirs.keys() and len(ours) > 100
    return [k for k, v in ours.items() if not torch.equal(v, theirs[k])]


def _completed(cluster: TwoNodeCluster, s: Timed) -> dict[str, str]:
    info = cluster.wait_final(s.job_id, WAIT)
    out = s.logs()[0]
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0"), out.read_text()
    return info


def test_a_job_spans_both_nodes(slurm_two_nodes: TwoNodeCluster, tmp_path: Path) -> None:
    script = tmp_path / "where.sh"
    script.write_text("#!/bin/bash\nsrun bash -c 'echo $SLURM_PROCID $(hostname) $(hostname -i)'\n")
    job = slurm_two_nodes.submit(
        script, ["-N", "2", "--ntasks-per-node=1", "-o", str(tmp_path / "o")]
    )
    info = slurm_two_nodes.wait_final(job, 60)
    assert (info["JobState"], info["NodeList"]) == ("COMPLETED", "tbxn[1-2]"), info
    lines = sorted((tmp_path / "o").read_text().splitlines())
    assert lines == ["0 tbxn1 198.18.0.1", "1 tbxn2 198.18.0.2"]


def test_two_nodes_equal_one_node_bit_for_bit(slurm_two_nodes, scenarios):
    runs = (scenarios.two_nodes, scenarios.one_node)
    infos = [_completed(slurm_two_nodes, s) for s in runs]
    _completed(slurm_two_nodes, scenarios.one_process)  # compared in the next test; it must run
    print(f"\n[wall] 2 nodes x 1 task and 1 node x 2 tasks: {max(s.wall() for s in runs):.1f} s")
    assert [(i["NumNodes"], i["NumTasks"]) for i in infos] == [("2", "2"), ("1", "2")]
    assert infos[0]["NodeList"] == "tbxn[1-2]", infos[0]
    text = scenarios.two_nodes.logs()[0].read_text()
    assert " world_size=2 effective_batch=2" in text
    for rank in (0, 1):  # one task per node: both are local rank 0
        assert f"world size: 2, world rank: {rank}, local rank: 0," in text
    differ = _differences(*(s.run_dir() / "checkpoint.pth" for s in runs))
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:3]}"


def test_two_nodes_equal_one_process_with_grad_accum_bit_for_bit(slurm_two_nodes, scenarios):
    runs = (scenarios.two_nodes, scenarios.one_process)
    infos = [_completed(slurm_two_nodes, s) for s in runs]
    print(f"\n[wall] 2 nodes x 1 task and 1 process x accum 2: {max(s.wall() for s in runs):.1f} s")
    assert infos[1]["NumTasks"] == "1"
    assert "batch_size=1 grad_accum=2 world_size=1" in scenarios.one_process.logs()[0].read_text()
    differ = _differences(*(s.run_dir() / "checkpoint.pth" for s in runs))
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:3]}"


def test_time_limited_two_node_job_saves_and_its_chain_continues_exactly(
    slurm_two_nodes, scenarios
):
    s = scenarios.time_limit
    records = follow_chain(slurm_two_nodes, s, WAIT)
    print(f"\n[wall] time-limited 2x1 chain of {len(records)} jobs: {s.wall():.1f} s")
    first, last = records[0], records[-1]
    first_out = s.logs()[0].read_text()
    assert len(records) >= 2, first_out
    assert (first["JobState"], first["ExitCode"]) in {("FAILED", "75:0"), ("TIMEOUT", "75:0")}
    assert STOPPED.search(first_out), first_out
    for record in records:  # every link of the chain keeps the job's shape: 2 nodes x 1 task
        assert (record["NodeList"], record["NumNodes"], record["NumTasks"]) == (
            "tbxn[1-2]", "2", "2"
        ), record  # fmt: skip
    last_out = s.logs(int(last["JobId"]))[0].read_text()
    assert last["JobState"] == "COMPLETED", last_out
    assert RESUMED.search(last_out), last_out
    _completed(slurm_two_nodes, scenarios.reference)
    differ = _differences(
        scenarios.reference.run_dir() / "checkpoint.pth",
        s.run_dir(int(last["JobId"])) / "checkpoint.pth",
    )
    assert not differ, f"{len(differ)} tensors differ from the uninterrupted run: {differ[:3]}"


def _check(*logs: Path) -> list[dict]:
    """`tbx-doctor check --format json` on the logs: the reports, one per job."""
    done = run_tool("tbx_doctor", "check", "--format", "json", *map(str, logs))
    assert done.returncode in (0, 1), done.stderr
    answer = json.loads(done.stdout)
    return answer.get("reports", [answer])


def test_node_failure_is_reported_by_slurm_and_named_by_the_doctor(slurm_two_nodes, node_failure):
    f = node_failure
    print(f"\n[wall] node failure: {f.scenario.wall():.1f} s (SLURM acted {f.detected_after:.1f} s"
          " after the kill)")  # fmt: skip
    assert f.killed, "nothing ran on the node"
    assert f.node_state.startswith("down"), f.node_state
    # The script asks for --requeue: SLURM requeues the job (Restarts=1) rather than NODE_FAIL.
    assert f.requeued["JobState"] == "NODE_FAIL" or int(f.requeued["Restarts"]) >= 1, f.requeued
    out, err = f.scenario.logs()
    text = out.read_text() + err.read_text()
    assert f"srun: error: Node failure on {f.node}" in text
    assert f"*** JOB {f.scenario.job_id} ON {NODE_NAMES[0]} CANCELLED AT" in text
    assert "DUE TO NODE FAILURE" in text
    ctld = (slurm_two_nodes.layout.log_dir / "slurmctld.log").read_text()
    assert f"JobId={f.scenario.job_id} due to failure of node {f.node}" in ctld
    (report,) = _check(out)
    assert "node-fail" in {finding["code"] for finding in report["findings"]}, report["findings"]


def test_doctor_gives_one_report_per_multinode_job(slurm_two_nodes, scenarios, node_failure):
    chain = [int(r["JobId"]) for r in follow_chain(slurm_two_nodes, scenarios.time_limit, WAIT)]
    jobs = [(scenarios.two_nodes, scenarios.two_nodes.job_id)]
    jobs += [(scenarios.time_limit, job) for job in chain]
    jobs.append((node_failure.scenario, node_failure.scenario.job_id))
    reports = _check(*(s.logs(job)[0] for s, job in jobs))
    assert [r["run"]["job_id"] for r in reports] == [str(job) for _, job in jobs]
    reasons = [r["run"]["end_reason"] for r in reports]
    assert reasons[0] == "completed" and reasons[2:-1] == ["completed"] * (len(chain) - 1)
    assert reasons[1] in ("requeued", "time-limit"), reports[1]["findings"]


def test_doctor_names_the_first_failing_rank_of_a_multinode_job(node_failure):
    f = node_failure
    (report,) = _check(f.scenario.logs()[0])
    head = report["findings"][0]
    said = json.dumps(head)
    assert (head["code"], report["run"]["end_reason"]) == ("node-fail", "node-fail"), said
    assert f.node in head["explanation"] and "rank 1" in head["explanation"], said
