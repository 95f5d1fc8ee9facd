"""Launch detection, and 1 process x grad-accum 2 == 2 gloo processes x grad-accum 1."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp

from tbx_train.distributed import (
    DistributedSetupError,
    detect_launch,
    export_slurm_rendezvous,
    first_host,
    init_distributed,
    launcher_world_size,
)
from tbx_train.sampler import StepBatchSampler

from . import scale_worker

STEPS = 2


def test_torchrun_variables():
    info = detect_launch({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (info.rank, info.world_size, info.local_rank, info.launcher) == (3, 4, 1, "torchrun")
    assert info.distributed and not info.is_main


def test_srun_step_variables():
    env = {"SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_LOCALID": "1", "SLURM_STEP_ID": "0",
           "SLURM_STEP_NUM_TASKS": "2"}  # fmt: skip
    info = detect_launch(env)
    assert (info.rank, info.world_size, info.local_rank, info.launcher) == (1, 2, 1, "slurm")


def test_plain_process_is_not_distributed():
    info = detect_launch({})
    assert (info.world_size, info.distributed, info.launcher) == (1, False, "none")


def test_multi_task_job_without_srun_is_an_error():
    # The batch shell of an --ntasks=2 job has SLURM_PROCID but no SLURM_STEP_ID.
    with pytest.raises(DistributedSetupError, match="SLURM_NTASKS=2 tasks but tbx-train runs"):
        detect_launch({"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_LOCALID": "0"})


def test_rank_outside_world_is_an_error():
    with pytest.raises(DistributedSetupError, match="do not fit world size"):
        detect_launch({"RANK": "2", "WORLD_SIZE": "2"})


@pytest.mark.parametrize(
    ("nodelist", "host"),
    [("vm", "vm"), ("gpu[003-004,7],cpu1", "gpu003"), ("a1,b2", "a1"), ("n[10,12]", "n10")],
)
def test_first_host(nodelist, host):
    assert first_host(nodelist) == host


def test_launcher_world_size_prefers_torchrun_then_slurm():
    assert launcher_world_size({"WORLD_SIZE": "4", "SLURM_NTASKS": "2"}) == 4
    assert launcher_world_size({"SLURM_NTASKS": "2"}) == 2
    assert launcher_world_size({}) == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _max_rel_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k] - b[k]).abs().max() / b[k].abs().max().clamp(min=1e-12)) for k in a)


def test_two_gloo_ranks_match_one_process_with_accumulation(tmp_path):
    """The real tiny DINO, the engine's optimizer step, our gloo init: 1 x accum 2 == 2 x 1.

    The ranks then agree on a stop signal that only rank 1 received.
    """
    torch.set_num_threads(1)
    kind = "tiny-dino"
    model, criterion, optimizer = scale_worker.build(kind)
    ctx = scale_worker.context(model, criterion, optimizer)
    sampler = StepBatchSampler(scale_worker.NUM_IMAGES, 1, grad_accum=2, seed=3)
    scale_worker.train_steps(ctx, sampler, STEPS)
    single = model.state_dict()

    out = tmp_path / "rank0.pt"
    mp.spawn(scale_worker.rank_main, args=(2, _free_port(), STEPS, str(out), kind), nprocs=2)
    saved = torch.load(out, weights_only=True)
    distributed = saved["model"]
    assert saved["stop_signal"] == "SIGUSR1"  # rank 1's signal reached rank 0's decision

    initial = scale_worker.build(kind)[0].state_dict()
    moved = max(float((single[k] - initial[k]).abs().max()) for k in single)
    assert moved > 1e-4  # the steps did change the weights
    assert _max_rel_diff(distributed, single) <= 1e-4


def _state_tensors(model: dict, optimizer: dict) -> dict[str, torch.Tensor]:
    tensors = {f"model/{k}": v for k, v in model.items()}
    for index, state in optimizer["state"].items():
        tensors.update({f"optimizer/{index}/{k}": v for k, v in state.items()})
    return tensors


def test_recipe_over_two_epochs_with_boxless_steps_is_bit_for_bit(tmp_path):
    """AdamW, clipping, DDP with unused parameters, 2 epochs, images without boxes: 2 gloo ranks
    x 1 and 1 process x accum 2 end with bit-for-bit equal model and optimizer state.

    The order (seed 4) has a step whose two images both lack boxes: its normaliser used to be
    floored per rank (max(0 / 2, 1) = 1, so the 2 ranks' averaged gradient was half the
    1-process one) and clipping and AdamW's eps made that a 3e-8 difference.
    """
    torch.set_num_threads(1)
    epochs, seed, images = 2, 4, 4  # images 0 and 3 have no box (scale_worker.sample)
    sampler = StepBatchSampler(images, 1, grad_accum=2, seed=seed)
    steps = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        order = sampler.order()
        steps += [order[i : i + 2] for i in range(0, images, 2)]
    boxless = [s for s in steps if all(len(scale_worker.sample(i)[1]["labels"]) == 0 for i in s)]
    assert boxless and len(boxless) < len(steps), steps  # the case under test, and real steps

    model, optimizer = scale_worker.recipe_run(epochs, seed, images)
    single = _state_tensors(model.state_dict(), optimizer.state_dict())
    out = tmp_path / "rank0.pt"
    args = ((epochs, seed, images), str(out))
    mp.spawn(scale_worker.recipe_rank_main, args=(2, _free_port(), *args), nprocs=2)
    saved = torch.load(out, weights_only=True)
    distributed = _state_tensors(saved["model"], saved["optimizer"])

    assert single.keys() == distributed.keys()
    assert sum(k.startswith("optimizer/") for k in single) > 100  # AdamW moments of every group
    differ = [k for k in single if not torch.equal(single[k], distributed[k])]
    worst = max((float((single[k] - distributed[k]).abs().max()) for k in differ), default=0.0)
    assert not differ, (
        f"{len(differ)} of {len(single)} tensors differ (max {worst:.1e}): {differ[:3]}"
    )


def test_srun_rendezvous_comes_from_node_list_and_job_id(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no scontrol: the node-list parser answers
    env = {"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1", "SLURM_STEP_ID": "0",
           "SLURM_JOB_NODELIST": "gpu[017-018]", "SLURM_JOB_ID": "39581627"}  # fmt: skip
    export_slurm_rendezvous(detect_launch(env), env)
    assert (env["MASTER_ADDR"], env["MASTER_PORT"]) == ("gpu017", str(15000 + 39581627 % 20000))
    assert (env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"]) == ("3", "4", "1")
    kept = {**env, "MASTER_ADDR": "head", "MASTER_PORT": "29500"}
    export_slurm_rendezvous(detect_launch(kept), kept)
    assert (kept["MASTER_ADDR"], kept["MASTER_PORT"]) == ("head", "29500")


def test_single_process_says_so(capsys):
    info = init_distributed(device="cpu", env={})
    assert (info.distributed, info.device, info.backend) == (False, "cpu", None)
    assert capsys.readouterr().out == "Not using distributed mode\n"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_single_process_picks_the_gpu():
    assert init_distributed(device="auto", env={}).device == "cuda:0"
