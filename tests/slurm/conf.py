"""The private configuration of the local cluster: slurm.conf and gres.conf as text.

Everything lives under one directory so several clusters (other test sessions, other users of
the machine) never share state, sockets or ports. Why each setting is there is in
../shared/docs/LOCAL_SLURM.md; the comments below name the reason in short.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ClusterLayout:
    """Paths and parameters of one private cluster rooted at `root`."""

    root: Path
    node: str  # must equal `hostname -s`: slurmd looks itself up by that name
    port_base: int  # slurmctld listens on port_base, slurmd on port_base + 1
    # Advertised, not real (config_overrides): the shipped scripts ask for 8 CPUs per task and
    # the scenarios run several such jobs at once on a 2-core box.
    cpus: int = 64
    real_memory_mb: int = 65536
    def_mem_per_cpu_mb: int = 1000  # per-job limit (OverMemoryKill): 8 GB for an 8-CPU job
    gpus: int = 8  # fake: gres files are symlinks to /dev/null
    kill_wait_s: int = 15  # time a TERM-trapping job has for its hook before SIGKILL
    # (name, address) of each node; empty: the one node `node` on 127.0.0.1. The controller
    # runs beside the first node.
    node_addresses: tuple[tuple[str, str], ...] = ()
    slurmd_timeout_s: int = 300  # SLURM's default; a node silent this long is DOWN

    @property
    def nodes(self) -> tuple[tuple[str, str], ...]:
        return self.node_addresses or ((self.node, "127.0.0.1"),)

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def slurm_conf(self) -> Path:
        return self.etc / "slurm.conf"

    @property
    def munge_dir(self) -> Path:
        return self.root / "munge"

    @property
    def munge_socket(self) -> Path:
        return self.munge_dir / "munge.socket"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def jobcomp(self) -> Path:
        return self.log_dir / "jobcomp.txt"

    def gpu_files(self) -> list[Path]:
        return [self.root / "dev" / f"gpu{i}" for i in range(self.gpus)]


def render_slurm_conf(layout: ClusterLayout) -> str:
    """slurm.conf for the layout's nodes (one on 127.0.0.1 by default), as root, no cgroups."""
    r = layout.root
    head, head_address = layout.nodes[0]
    names = ",".join(name for name, _ in layout.nodes)
    lines = [
        "ClusterName=local",
        f"SlurmctldHost={head}({head_address})",  # address pinned: no DNS needed
        f"SlurmctldPort={layout.port_base}",
        f"SlurmdPort={layout.port_base + 1}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={layout.munge_socket}",
        f"StateSaveLocation={r}/state",
        f"SlurmdSpoolDir={r}/spool/%n",  # %n: the node name, one folder per slurmd
        f"SlurmctldPidFile={r}/run/slurmctld.pid",
        f"SlurmdPidFile={r}/run/slurmd-%n.pid",
        f"SlurmctldLogFile={layout.log_dir}/slurmctld.log",
        f"SlurmdLogFile={layout.log_dir}/slurmd-%n.log",
        f"SlurmdTimeout={layout.slurmd_timeout_s}",
        "ProctrackType=proctrack/linuxproc",  # no cgroups
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        f"DefMemPerCPU={layout.def_mem_per_cpu_mb}",  # else one job takes all memory
        "SlurmdParameters=config_overrides",  # advertise more CPUs than the box has
        "SchedulerParameters=batch_sched_delay=0",  # default adds 3 s per job
        f"KillWait={layout.kill_wait_s}",
        "MinJobAge=3600",  # keep finished jobs visible to `scontrol show job`
        "ReturnToService=2",
        "MailProg=/bin/true",
        "MpiDefault=none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/filetxt",
        f"JobCompLoc={layout.jobcomp}",
        "JobAcctGatherType=jobacct_gather/linux",
        "JobAcctGatherFrequency=task=1",
        "JobAcctGatherParams=OverMemoryKill",  # --mem enforced without cgroups
        "GresTypes=gpu",
    ]
    lines += [
        f"NodeName={name} NodeAddr={address} CPUs={layout.cpus} "
        f"RealMemory={layout.real_memory_mb} Gres=gpu:fake:{layout.gpus} State=UNKNOWN"
        for name, address in layout.nodes
    ]
    lines.append(f"PartitionName=debug Nodes={names} Default=YES MaxTime=INFINITE State=UP")
    return "\n".join(lines) + "\n"


def render_gres_conf(layout: ClusterLayout) -> str:
    """gres.conf naming one device file per fake GPU (a count without files drains the node)."""
    lines = ["AutoDetect=off"]
    lines += [
        f"NodeName={name} Name=gpu Type=fake File={path}"
        for name, _ in layout.nodes
        for path in layout.gpu_files()
    ]
    return "\n".join(lines) + "\n"


def write_config(layout: ClusterLayout) -> None:
    """Create the directory tree, the fake GPU device links and both config files."""
    for sub in ("etc", "state", "spool", "run", "log", "dev"):
        (layout.root / sub).mkdir(parents=True, exist_ok=True)
    for name, _ in layout.nodes:
        (layout.root / "spool" / name).mkdir(exist_ok=True)
    layout.munge_dir.mkdir(mode=0o755, exist_ok=True)  # non-root job users reach the socket
    for path in layout.gpu_files():
        path.symlink_to("/dev/null")  # slurmd wants a character device, not a regular file
    layout.slurm_conf.write_text(render_slurm_conf(layout))
    (layout.etc / "gres.conf").write_text(render_gres_conf(layout))
