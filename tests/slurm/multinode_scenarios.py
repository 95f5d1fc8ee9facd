"""Issue 15's scenarios on the two-node cluster: the shipped multi-node script run as a user would.

`submit_all` submits, at once: the same small run as 2 nodes x 1 task (train_multinode.sbatch),
1 node x 2 tasks (train_tbx11k_2gpu.sbatch) and 1 process with grad-accum 2
(train_tbx11k_1gpu.sbatch), all with one image per process and micro-batch, so every optimizer
step sees the same two images; and, on a larger set, a 2 x 1 job under a 1-minute time limit and
its uninterrupted twin. `fail_a_node` runs last, alone (a dead node ends every job on it): a 2 x 1
job whose second node is killed, slurmd and task, while it trains.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .cluster import poll
from .multinode import NODE_NAMES, TwoNodeCluster
from .project import SCRIPT_1GPU, SCRIPT_2GPU, job_env, make_project, write_synthetic_data
from .scenarios import TIME_LIMIT_ARGS, Scenario, wait_for_line

SCRIPT_MULTINODE = "scripts/train_multinode.sbatch"
TWO_BY_ONE = ["--nodes=2", "--ntasks-per-node=1"]  # 2 nodes x 1 task: gloo over the veth pair
ONE_IMAGE = "--batch-size 1"  # per process and micro-batch
SMALL_IMAGES = 8  # 7 train images: 2 epochs of 4 steps
# ~133 train images: 2 epochs of ~67 steps (>= 0.5 s each on 2 ranks, even on an idle machine)
# take longer than the 55 s after which SLURM's USR1 has surely arrived, so the time-limit job is
# always stopped while it trains (with 40 images and the faster step it once finished first).
LONG_IMAGES = 160


@dataclass
class Timed(Scenario):
    """A scenario and when it was submitted (for its wall time)."""

    submitted: float = field(default_factory=time.monotonic)

    def wall(self) -> float:
        return time.monotonic() - self.submitted


@dataclass
class MultiNodeScenarios:
    two_nodes: Timed  # 2 nodes x 1 task
    one_node: Timed  # 1 node x 2 tasks
    one_process: Timed  # 1 process, grad-accum 2
    time_limit: Timed  # 2 x 1 under --time=1: saves, exits 75, the chain continues
    reference: Timed  # the time-limit job's data, uninterrupted


def _submit(
    cluster: TwoNodeCluster, folder: Path, data: Path, script: str, args: list[str], extra: str
) -> Timed:
    project = make_project(folder, data)
    env = job_env(project, TBX_EXTRA_ARGS=extra)
    return Timed(project, cluster.submit(script, args, env=env, cwd=project))


def submit_all(cluster: TwoNodeCluster, base: Path) -> MultiNodeScenarios:
    """Write both data sets and submit every job of the concurrent scenarios."""
    small, long = base / "data-small", base / "data-long"
    write_synthetic_data({small: (SMALL_IMAGES, 2), long: (LONG_IMAGES, 3)})

    def submit(name: str, data: Path, script: str, args: list[str], extra: str = ONE_IMAGE):
        return _submit(cluster, base / name, data, script, args, extra)

    return MultiNodeScenarios(
        two_nodes=submit("two-nodes", small, SCRIPT_MULTINODE, TWO_BY_ONE),
        one_node=submit("one-node", small, SCRIPT_2GPU, []),
        one_process=submit("one-process", small, SCRIPT_1GPU, [], f"{ONE_IMAGE} --grad-accum 2"),
        time_limit=submit("time-limit", long, SCRIPT_MULTINODE, TWO_BY_ONE + TIME_LIMIT_ARGS),
        reference=submit("reference", long, SCRIPT_MULTINODE, TWO_BY_ONE),
    )


@dataclass
class NodeFailure:
    """The node-failure scenario: the job, the node killed and what SLURM said afterwards."""

    scenario: Timed
    node: str
    killed: list[int]
    requeued: dict[str, str]  # the job's record once SLURM requeued it
    node_state: str  # sinfo's state of the dead node
    detected_after: float  # seconds from the kill to SLURM acting on it


def fail_a_node(cluster: TwoNodeCluster, base: Path, data: Path, timeout: float) -> NodeFailure:
    """Submit a 2 x 1 job, kill its second node while it trains, wait for SLURM to notice.

    The script asks for --requeue, so SLURM requeues the job instead of ending it NODE_FAIL;
    it is then cancelled (the rerun would wait for the node) and the node started again.
    """
    scenario = _submit(cluster, base / "node-fail", data, SCRIPT_MULTINODE, TWO_BY_ONE, ONE_IMAGE)
    wait_for_line(cluster, scenario, "Epoch: [0]", timeout)
    node = NODE_NAMES[1]
    killed_at = time.monotonic()
    killed = cluster.fail_node(node)

    def requeued() -> dict[str, str] | None:
        info = cluster.job_info(scenario.job_id)
        return (
            info if int(info.get("Restarts", "0")) >= 1 or info["JobState"] == "NODE_FAIL" else None
        )

    record = poll(requeued, timeout, f"SLURM to act on the failure of {node}", interval=0.5)
    detected_after = time.monotonic() - killed_at
    node_state = cluster.wait_node_state(node, ("down*", "down"), timeout)
    if record["JobState"] not in ("NODE_FAIL",):
        cluster.cancel(scenario.job_id)
        cluster.wait_final(scenario.job_id, timeout)
    cluster.restart_node(node, timeout)
    return NodeFailure(scenario, node, killed, record, node_state, detected_after)
