"""Two "nodes" on one machine: network namespaces joined by a veth pair.

Each node is a network namespace with one end of a veth pair and an address from 198.18.0.0/15
(the range set aside for network tests, so nothing here can reach or shadow a real host). A
process started with `NodeNet.command(...)` runs in the node's network namespace and in mount
and UTS namespaces of its own: its host name is the node's name and its /etc/hosts (a private
bind mount) names every node, as on a real cluster. gloo binds to the address the host name
resolves to, and torch's rendezvous host is the first node of the job's node list.
(`ip netns exec` is not used for daemons: it remounts /sys, which hides the cgroup file systems
slurmd insists on finding.)

Nothing is routed to or from the machine's own namespace; all traffic stays on the veth pair.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# RFC 2544's benchmarking range; the only addresses this fixture ever assigns.
TEST_NET = ipaddress.ip_network("198.18.0.0/15")


class NetnsUnavailable(RuntimeError):
    """Namespaces or veth pairs cannot be made here; the message is the skip reason."""


@dataclass(frozen=True)
class NodeNet:
    """One node: its name (also its host name), namespace, address and hosts file."""

    name: str
    netns: str
    address: str
    veth: str
    hosts: Path

    def command(self, *args: str) -> list[str]:
        """`args` run inside this node (see the module docstring). Every step `exec`s the next,
        so the PID of the process started is the PID of `args[0]`."""
        inner = (
            f"mount --bind {shlex.quote(str(self.hosts))} /etc/hosts"
            f" && hostname {shlex.quote(self.name)}"
            f" && exec nsenter --net=/run/netns/{self.netns} {shlex.join(args)}"
        )
        return ["unshare", "--mount", "--uts", "sh", "-c", inner]

    def client(self, *args: str) -> list[str]:
        """`args` run in this node's network namespace only (a login shell on the node, for the
        SLURM clients: they find the controller by the address in slurm.conf)."""
        return ["nsenter", f"--net=/run/netns/{self.netns}", *args]


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


class TwoNodeNet:
    """Make (`up`) and remove (`down`) the namespaces, the veth pair and the hosts files."""

    def __init__(
        self, tag: str, names: tuple[str, str], etc: Path, subnet: str = "198.18.0.0/24"
    ) -> None:
        network = ipaddress.ip_network(subnet)
        if not network.subnet_of(TEST_NET):  # type: ignore[arg-type]
            raise ValueError(f"{subnet} is outside {TEST_NET}, the range set aside for tests")
        hosts = list(network.hosts())
        self.prefix = network.prefixlen
        self.nodes = tuple(
            NodeNet(name, f"{tag}{i}", str(hosts[i]), f"{tag}v{i}", etc / f"hosts-{name}")
            for i, name in enumerate(names)
        )
        self.made: list[str] = []  # namespaces created, for `down`

    def up(self) -> None:
        """Create both namespaces and the veth pair, assign addresses, write the hosts files."""
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root")
        missing = [p for p in ("ip", "unshare", "nsenter", "mount") if shutil.which(p) is None]
        if missing:
            raise NetnsUnavailable(f"{', '.join(missing)} not installed (iproute2, util-linux)")
        first, second = self.nodes
        for node in self.nodes:
            _ip("netns", "add", node.netns)
            self.made.append(node.netns)
        _ip("link", "add", first.veth, "type", "veth", "peer", "name", second.veth)
        for node in self.nodes:
            _ip("link", "set", node.veth, "netns", node.netns)
            _ip("-n", node.netns, "addr", "add", f"{node.address}/{self.prefix}", "dev", node.veth)
            _ip("-n", node.netns, "link", "set", node.veth, "up")
            _ip("-n", node.netns, "link", "set", "lo", "up")
            self._write_hosts(node)

    def _write_hosts(self, node: NodeNet) -> None:
        # The machine's own entries stay (its name still resolves), then every node.
        own = Path("/etc/hosts").read_text() if Path("/etc/hosts").exists() else ""
        lines = [own.rstrip("\n")] + [f"{n.address} {n.name}" for n in self.nodes]
        node.hosts.parent.mkdir(parents=True, exist_ok=True)
        node.hosts.write_text("\n".join(lines) + "\n")

    def pids_of(self, node: NodeNet) -> list[int]:
        """PIDs of every process inside `node` (all of them ours: nothing else enters)."""
        if node.netns not in self.made:
            return []
        done = subprocess.run(
            ["ip", "netns", "pids", node.netns], capture_output=True, text=True, timeout=20
        )
        return [int(pid) for pid in done.stdout.split() if pid.isdigit()]

    def pids(self) -> list[int]:
        """PIDs of every process in either node."""
        return [pid for node in self.nodes for pid in self.pids_of(node)]

    def down(self) -> None:
        """Delete the namespaces; the veth pair goes with them."""
        for netns in self.made:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=20)
        self.made.clear()
