"""A private single-node SLURM cluster for end-to-end tests: start, submit, wait, stop.

`LocalCluster(root).start()` writes the config of `conf.py` under `root`, runs munged, slurmctld
and slurmd in the foreground as our own children (so we know their PIDs and reap them), and waits
until the node is idle. `stop()` cancels the jobs, stops the daemons by PID, kills any process
left holding files under `root` (slurmstepd outlives slurmd) and removes `root`.
Job state comes from `scontrol show job -o`, the only per-job record without slurmdbd.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from .conf import ClusterLayout, write_config
from .processes import kill_tree, processes_using

FINAL_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL",
     "DEADLINE", "PREEMPTED"}
)  # fmt: skip
T = TypeVar("T")


class ClusterError(RuntimeError):
    """A daemon or client of the local cluster misbehaved; the message carries its output."""


def _port_pair_free(base: int) -> bool:
    for port in (base, base + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                return False
    return True


def pick_port_base(start: int = 21000, span: int = 8000) -> int:
    """A free pair of TCP ports; two clusters on one port make clients talk to the wrong one."""
    offset = (os.getpid() * 2) % span
    for step in range(0, span, 2):
        base = start + (offset + step) % span
        if _port_pair_free(base):
            return base
    raise ClusterError(f"no free port pair in {start}..{start + span}")


def parse_job_line(line: str) -> dict[str, str]:
    """`scontrol show job -o` output (one `Key=Value` line) as a dict.

    Values may contain spaces (e.g. a Reason or a path), so a token without `Key=` in front is
    glued to the previous value.
    """
    info: dict[str, str] = {}
    key = None
    for token in line.strip().split(" "):
        head, sep, value = token.partition("=")
        if sep and head and all(c.isalnum() or c in "_/:" for c in head):
            key = head
            info[key] = value
        elif key is not None:
            info[key] += " " + token
    return info


def poll(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Call `probe` until it returns something other than None; ClusterError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class LocalCluster:
    """One private cluster under `root`; see the module docstring."""

    def __init__(self, root: Path, programs: Mapping[str, Path]) -> None:
        self.layout = ClusterLayout(
            root=root, node=socket.gethostname().split(".")[0], port_base=pick_port_base()
        )
        self.programs = dict(programs)
        self.daemons: dict[str, subprocess.Popen[bytes]] = {}
        self.startup_seconds: float | None = None

    @property
    def env(self) -> dict[str, str]:
        """What a client (and, through sbatch's --export=ALL, a job) needs to find this cluster."""
        return {"SLURM_CONF": str(self.layout.slurm_conf)}

    def client(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a SLURM client program (`sbatch`, `scontrol`, ...) against this cluster."""
        command = self.client_command(str(self.programs.get(args[0], args[0])), *args[1:])
        done = subprocess.run(
            command, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=60
        )
        if check and done.returncode != 0:
            raise ClusterError(f"{' '.join(args)} -> exit {done.returncode}: {done.stderr.strip()}")
        return done

    def client_command(self, *command: str) -> list[str]:
        """Where a client runs: here, as is (a multi-node cluster runs it inside a node)."""
        return list(command)

    def daemon_command(self, name: str, *args: str) -> list[str]:
        """How daemon `name` (a key of `daemons`: "slurmd" or, with several nodes, "slurmd@N")
        is started; the process started must be the daemon itself (its PID is the one stopped)."""
        return [str(self.programs[name.split("@")[0]]), *args]

    def _spawn(self, name: str, *args: str) -> None:
        """Start a daemon in the foreground as our child, in its own session, with no inherited
        fds (a leaked lock fd once kept a later run waiting for minutes)."""
        log = open(self.layout.log_dir / f"{name}.stdout", "wb")  # noqa: SIM115 (child owns it)
        with log:
            self.daemons[name] = subprocess.Popen(
                self.daemon_command(name, *args),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                close_fds=True,
                start_new_session=True,
                env={**os.environ, **self.env},
            )

    def _check_alive(self) -> None:
        for name, process in self.daemons.items():
            if process.poll() is not None:
                tail = self.log_tail(name)
                raise ClusterError(f"{name} exited with {process.returncode}:\n{tail}")

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The last lines of a daemon's log files, for error messages."""
        text = []
        for path in sorted(self.layout.log_dir.glob(f"{name.split('@')[0]}*")):
            text += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(text)

    def start(self, timeout: float = 60) -> LocalCluster:
        """Write the config and start munged, slurmctld, slurmd; return once the node is idle."""
        began = time.monotonic()
        layout = self.layout
        write_config(layout)
        key = layout.munge_dir / "munge.key"
        subprocess.run([str(self.programs["mungekey"]), "-c", "-k", str(key)], check=True)
        self._spawn(
            "munged", "--foreground", "--force", f"--socket={layout.munge_socket}",
            f"--key-file={key}", f"--pid-file={layout.munge_dir}/munged.pid",
            f"--log-file={layout.log_dir}/munged.log", f"--seed-file={layout.munge_dir}/seed",
        )  # fmt: skip
        poll(lambda: self._check_alive() or layout.munge_socket.exists() or None, timeout, "munged")
        conf = str(layout.slurm_conf)
        self._spawn("slurmctld", "-D", "-i", "-f", conf)
        poll(lambda: self._ping() or None, timeout, "slurmctld to answer `scontrol ping`")
        for name in self.node_names:
            self.start_node(name)
        poll(lambda: self._nodes_idle() or None, timeout, f"nodes {self.node_list} to be idle")
        self.startup_seconds = time.monotonic() - began
        return self

    @property
    def node_names(self) -> list[str]:
        return [name for name, _ in self.layout.nodes]

    @property
    def node_list(self) -> str:
        return ",".join(self.node_names)

    def slurmd_key(self, node: str) -> str:
        """The `daemons` key of `node`'s slurmd."""
        return "slurmd" if len(self.layout.nodes) == 1 else f"slurmd@{node}"

    def start_node(self, node: str) -> None:
        """Start `node`'s slurmd (it registers with slurmctld on its own)."""
        self._spawn(self.slurmd_key(node), "-D", "-f", str(self.layout.slurm_conf), "-N", node)

    def _ping(self) -> bool:
        self._check_alive()
        return "UP" in self.client("scontrol", "ping", check=False).stdout

    def node_states(self) -> dict[str, str]:
        """`sinfo`'s state of each node (idle, alloc, down*, ...)."""
        done = self.client("sinfo", "-h", "-N", "-n", self.node_list, "-o", "%N %T", check=False)
        return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)

    def _nodes_idle(self) -> bool:
        self._check_alive()
        states = self.node_states()
        return all(states.get(name) == "idle" for name in self.node_names)

    def submit(
        self,
        script: Path | str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> int:
        """`sbatch [args] script` with `env` added to ours (jobs inherit it); returns the job id."""
        command = self.client_command(
            str(self.programs["sbatch"]), "--parsable", *args, str(script)
        )
        done = subprocess.run(
            command,
            env={**os.environ, **(env or {}), **self.env},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise ClusterError(f"sbatch failed (exit {done.returncode}): {done.stderr.strip()}")
        return int(done.stdout.strip().split(";")[0])

    def job_info(self, job_id: int) -> dict[str, str]:
        """The job's `scontrol show job -o` record as a dict (kept for MinJobAge=3600 s)."""
        return parse_job_line(self.client("scontrol", "show", "job", "-o", str(job_id)).stdout)

    def wait_state(self, job_id: int, states: Sequence[str], timeout: float) -> dict[str, str]:
        """Wait until JobState is one of `states`; returns the record."""

        def probe() -> dict[str, str] | None:
            info = self.job_info(job_id)
            return info if info.get("JobState") in states else None

        return poll(probe, timeout, f"job {job_id} to reach {'/'.join(states)}", interval=0.2)

    def wait_final(self, job_id: int, timeout: float) -> dict[str, str]:
        """Wait until the job has a final state (it has left COMPLETING: its script, hook
        included, has ended and its output file is complete); returns the record."""
        return self.wait_state(job_id, sorted(FINAL_STATES), timeout)

    def cancel(self, job_id: int, *args: str) -> None:
        """`scancel [args] job_id`."""
        self.client("scancel", *args, str(job_id))

    def _active_jobs(self) -> list[str]:
        done = self.client("squeue", "-h", "-o", "%i", check=False)
        return done.stdout.split() if done.returncode == 0 else []

    def stop(self) -> None:
        """Cancel jobs, stop the daemons by PID, kill leftovers under `root`, remove `root`."""
        if self.daemons.get("slurmctld") and self.daemons["slurmctld"].poll() is None:
            jobs = self._active_jobs()
            if jobs:
                self.client("scancel", *jobs, check=False)
                # A job ignoring TERM would cost KillWait; such a job is killed below anyway.
                with contextlib.suppress(ClusterError):
                    poll(lambda: not self._active_jobs() or None, 5, "jobs to end")
        self._kill_leftovers()  # job trees first: slurmd waits for its slurmstepds otherwise
        for name in [self.slurmd_key(node) for node in self.node_names] + ["slurmctld", "munged"]:
            self._stop_daemon(name)
        self._kill_leftovers()
        shutil.rmtree(self.layout.root, ignore_errors=True)

    def _kill_leftovers(self) -> None:
        """SIGKILL every process tree (but ours and the daemons) holding files under root."""
        ours = {os.getpid(), *(p.pid for p in self.daemons.values() if p.poll() is None)}
        for pid in processes_using(self.layout.root, exclude=ours):
            kill_tree(pid)

    def _stop_daemon(self, name: str) -> None:
        process = self.daemons.get(name)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:  # slurmctld may linger on a job still COMPLETING; its state is discarded anyway
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
