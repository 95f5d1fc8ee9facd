"""Process-group setup for torchrun and srun launches, and the reductions the engine needs.

Launch (one process per GPU):

    torchrun --nproc-per-node 2 -m tbx_train run ...          # RANK, WORLD_SIZE, LOCAL_RANK
    srun --ntasks-per-node 2 python -m tbx_train run ...      # SLURM_PROCID, SLURM_NTASKS, ...

Under srun, MASTER_ADDR is the first host of SLURM_JOB_NODELIST and MASTER_PORT is derived from
the job id (so two jobs on one node do not collide), unless they are already set. The device is
`cuda:LOCAL_RANK` (the rank on this node), with NCCL; without CUDA (or `--device cpu`) gloo.
A SLURM job with several tasks that ends up as one process is an error, never a quiet 1-GPU run.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "DistributedSetupError",
    "all_reduce_max",
    "all_reduce_sum",
    "cleanup_distributed",
    "detect_launch",
    "export_slurm_rendezvous",
    "first_host",
    "init_distributed",
    "launcher_world_size",
    "reduce_dict",
]


class DistributedSetupError(RuntimeError):
    """The launch environment is inconsistent; the message says what to change."""


@dataclass(frozen=True)
class DistInfo:
    """Who this process is. `distributed` is False for a plain single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launcher: str = "none"  # "torchrun" | "slurm" | "none"
    distributed: bool = False
    device: str = "cpu"  # "cuda:N" or "cpu"
    backend: str | None = None  # "nccl" | "gloo" | None

    @property
    def is_main(self) -> bool:
        """Rank 0 logs and writes checkpoints."""
        return self.rank == 0


def detect_launch(env: Mapping[str, str]) -> DistInfo:
    """Rank, world size and local rank from torchrun or srun variables (pure: no side effects)."""
    if "RANK" in env and "WORLD_SIZE" in env:
        info = DistInfo(
            rank=int(env["RANK"]),
            world_size=int(env["WORLD_SIZE"]),
            local_rank=int(env.get("LOCAL_RANK", "0")),
            launcher="torchrun",
        )
    elif "SLURM_PROCID" in env and "SLURM_STEP_ID" in env:  # inside an srun step
        info = DistInfo(
            rank=int(env["SLURM_PROCID"]),
            world_size=int(env.get("SLURM_STEP_NUM_TASKS", env.get("SLURM_NTASKS", "1"))),
            local_rank=int(env.get("SLURM_LOCALID", "0")),
            launcher="slurm",
        )
    else:
        info = DistInfo()
    _check_world(info, env)
    return DistInfo(**{**info.__dict__, "distributed": info.world_size > 1})


def _check_world(info: DistInfo, env: Mapping[str, str]) -> None:
    tasks = int(env.get("SLURM_NTASKS", "1"))
    if info.world_size == 1 and tasks > 1:
        raise DistributedSetupError(
            f"this SLURM job has SLURM_NTASKS={tasks} tasks but tbx-train runs as one process "
            f"(launcher: {info.launcher}); start it with `srun python -m tbx_train run ...` "
            f"(one task per GPU), or request --ntasks=1 and use torchrun --nproc-per-node N"
        )
    if not 0 <= info.rank < info.world_size or info.local_rank < 0:
        raise DistributedSetupError(
            f"rank {info.rank} / local rank {info.local_rank} do not fit world size "
            f"{info.world_size}; check the launcher's variables"
        )


def launcher_world_size(env: Mapping[str, str]) -> int:
    """The world size a launch in this environment will have (for `plan`, before any launch)."""
    for name in ("WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"):
        if name in env:
            return int(env[name])
    return 1


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: 'gpu[003-004,7],cpu1' -> 'gpu003'."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not match:
        raise DistributedSetupError(f"cannot read a host from SLURM_JOB_NODELIST={nodelist!r}")
    prefix, ranges = match.groups()
    return prefix + (ranges.split(",")[0].split("-")[0] if ranges else "")


def _master_addr(nodelist: str) -> str:
    # scontrol knows every node-list syntax; the parser covers clusters without it on PATH.
    try:
        result = subprocess.run(
            ["scontrol", "show", "hostnames", nodelist],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return result.stdout.split()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return first_host(nodelist)


def export_slurm_rendezvous(info: DistInfo, env: MutableMapping[str, str]) -> None:
    """env:// reads MASTER_ADDR/PORT, RANK, WORLD_SIZE: fill them in from SLURM's variables."""
    if "MASTER_ADDR" not in env:
        env["MASTER_ADDR"] = _master_addr(env.get("SLURM_JOB_NODELIST", "localhost"))
    if "MASTER_PORT" not in env:
        env["MASTER_PORT"] = str(15000 + int(env.get("SLURM_JOB_ID", "0")) % 20000)
    env.update(RANK=str(info.rank), WORLD_SIZE=str(info.world_size))
    env["LOCAL_RANK"] = str(info.local_rank)


def init_distributed(device: str = "auto", env: MutableMapping[str, str] | None = None) -> DistInfo:
    """Detect the launch, join the process group and pick the device; prints the official lines.

    `device`: "auto" (CUDA when available), "cuda" or "cpu". Every rank raises on a bad setup.
    """
    env = os.environ if env is None else env
    info = detect_launch(env)
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise DistributedSetupError("--device cuda was given but torch sees no CUDA device")
    if not info.distributed:
        print("Not using distributed mode", flush=True)
        return DistInfo(**{**info.__dict__, "device": "cuda:0" if use_cuda else "cpu"})
    if use_cuda:
        _check_local_gpu(info)
        torch.cuda.set_device(info.local_rank)
    if info.launcher == "slurm":
        export_slurm_rendezvous(info, env)
        count = torch.cuda.device_count() if use_cuda else 0
        print(
            f"world size: {info.world_size}, world rank: {info.rank}, "
            f"local rank: {info.local_rank}, device_count: {count}",
            flush=True,
        )
    else:
        print(
            f"world size: {info.world_size}, rank: {info.rank}, local rank: {info.local_rank}",
            flush=True,
        )
    backend = "nccl" if use_cuda else "gloo"
    print(f"| distributed init (rank {info.rank}): env://", flush=True)
    dist.init_process_group(
        backend, init_method="env://", world_size=info.world_size, rank=info.rank
    )
    dist.barrier()
    return DistInfo(
        **{**info.__dict__, "backend": backend},
        **({"device": f"cuda:{info.local_rank}"} if use_cuda else {}),
    )


def _check_local_gpu(info: DistInfo) -> None:
    count = torch.cuda.device_count()
    if info.local_rank >= count:
        raise DistributedSetupError(
            f"local rank {info.local_rank} has no GPU: this node shows {count} CUDA device(s); "
            "start at most one task per GPU (--ntasks-per-node / --gpus-per-node)"
        )


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks in place (a no-op without a process group); returns the tensor."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """Maximum over ranks in place (e.g. "any rank was asked to stop")."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def reduce_dict(
    values: Mapping[str, torch.Tensor], average: bool = True
) -> dict[str, torch.Tensor]:
    """Reduce 0-dim tensors across ranks for logging (sorted keys so every rank agrees)."""
    if not (dist.is_available() and dist.is_initialized()) or not values:
        return dict(values)
    names = sorted(values)
    stacked = torch.stack([values[name].detach().float() for name in names])
    dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
    if average:
        stacked /= dist.get_world_size()
    return dict(zip(names, stacked, strict=True))


def cleanup_distributed() -> None:
    """Leave the process group (at the end of a run, on every rank)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
