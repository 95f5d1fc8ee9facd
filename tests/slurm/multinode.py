"""A private two-node SLURM cluster on one machine (see netns.py for the two "nodes").

Node 0 runs slurmctld and a slurmd, node 1 a slurmd; each daemon runs inside its node's network
and UTS namespaces, so a job spread over both nodes talks over the veth pair exactly as over a
real network (srun to the other slurmd, gloo between the ranks). munged runs in the machine's own
namespace: its socket is a file, reachable from both nodes. The clients of the tests run on
node 0, as on a login node.

`fail_node` kills one node's slurmd and every process on that node (its job steps), which is what
a node crash looks like to slurmctld; `start_node` brings the node back.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path

from .cluster import LocalCluster, pick_port_base, poll
from .conf import ClusterLayout
from .netns import TwoNodeNet
from .processes import kill_tree

NODE_NAMES = ("tbxn1", "tbxn2")
# slurmctld marks a node that has not answered for this long DOWN (default 300 s); measured
# here, it acted on a killed node 24-26 s after the kill with 6 s and with 10 s alike.
SLURMD_TIMEOUT_S = 10


class TwoNodeCluster(LocalCluster):
    """Two nodes, one controller; `submit`, `wait_final`, `client` as LocalCluster."""

    def __init__(self, root: Path, programs: Mapping[str, Path]) -> None:
        super().__init__(root, programs)
        self.net = TwoNodeNet(f"tbx{os.getpid() % 100000}n", NODE_NAMES, root / "etc")
        self.layout = ClusterLayout(
            root=root,
            node=NODE_NAMES[0],
            port_base=pick_port_base(),
            node_addresses=tuple((n.name, n.address) for n in self.net.nodes),
            slurmd_timeout_s=SLURMD_TIMEOUT_S,
        )
        self.nodes = {n.name: n for n in self.net.nodes}

    def client_command(self, *command: str) -> list[str]:
        return self.net.nodes[0].client(*command)

    def daemon_command(self, name: str, *args: str) -> list[str]:
        program = str(self.programs[name.split("@")[0]])
        if name == "munged":
            return [program, *args]
        node = self.nodes[name.split("@")[1]] if "@" in name else self.net.nodes[0]
        return node.command(program, *args)

    def start(self, timeout: float = 60) -> TwoNodeCluster:
        self.net.up()
        super().start(timeout)
        return self

    def fail_node(self, node: str) -> list[int]:
        """Kill `node` as a crash would: its slurmd and every process on it, at once (SIGKILL).
        Returns the PIDs killed."""
        victims = [pid for pid in self.net.pids_of(self.nodes[node]) if pid != os.getpid()]
        for pid in victims:
            kill_tree(pid)
        process = self.daemons[self.slurmd_key(node)]
        process.wait(timeout=15)
        return victims

    def wait_node_state(self, node: str, states: tuple[str, ...], timeout: float) -> str:
        """Wait until sinfo shows `node` in one of `states` (e.g. "down*", "idle")."""

        def probe() -> str | None:
            state = self.node_states().get(node)
            return state if state in states else None

        return poll(probe, timeout, f"node {node} to be {'/'.join(states)}", interval=0.5)

    def restart_node(self, node: str, timeout: float = 60) -> None:
        """Start `node`'s slurmd again and wait until it is idle (ReturnToService=2)."""
        self.start_node(node)
        self.wait_node_state(node, ("idle",), timeout)

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            for pid in self.net.pids():  # anything still inside a node: only ours get there
                kill_tree(pid)
            for process in self.daemons.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=15)
            self.net.down()
