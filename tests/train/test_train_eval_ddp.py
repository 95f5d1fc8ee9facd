"""Evaluation under DDP with uneven validation shards: 2 gloo processes, 1 or 3 val images.

With 3 images rank 0 evaluates images 0 and 2, rank 1 image 1; with 1 image rank 1 has none.
With an all-reduce per batch, rank 1 reached the predictions' all_gather while rank 0 still
waited in its last batch's all-reduce: both hung.
"""

import json
import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from tiny_run import tiny_run_config

from tbx_train.data import write_synthetic_tbx11k
from tbx_train.distributed import cleanup_distributed
from tbx_train.runner import run_training

TIMEOUT_S = 150  # a hang shows as this timeout, not as a stuck test run


def rank_main(rank: int, port: int, root: str, out: str) -> None:
    """One rank: join the gloo group through the runner's own init, train one epoch, evaluate."""
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    lines: list[str] = []
    outcome = run_training(tiny_run_config(root, out, batch_size=1), write=lines.append)
    if rank == 0:
        ap = outcome.ap_per_epoch.get(0, [])
        report = {"exit_code": outcome.exit_code, "ap": ap, "lines": lines}
        (Path(out) / "rank0.json").write_text(json.dumps(report))
    cleanup_distributed()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(("images", "val_fraction", "val_images"), [(5, 0.6, 3), (3, 0.34, 1)])
def test_two_ranks_evaluate_an_odd_validation_set(tmp_path, images, val_fraction, val_images):
    root = tmp_path / "synth"
    # 2 train images: one optimizer step of batch 1 on each of the 2 ranks.
    write_synthetic_tbx11k(root, images=images, seed=1, size=64, val_fraction=val_fraction)
    val = json.loads((root / "annotations/json/TBX11K_val.json").read_text())
    assert len(val["images"]) == val_images
    context = mp.spawn(
        rank_main, args=(_free_port(), str(root), str(tmp_path)), nprocs=2, join=False
    )
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"2-rank evaluation did not finish in {TIMEOUT_S} s (a collective hangs)")
    report = json.loads((tmp_path / "rank0.json").read_text())
    assert report["exit_code"] == 0
    assert len(report["ap"]) == 12  # rank 0 scored the merged predictions
    lines = report["lines"]
    rank0_batches = (val_images + 1) // 2
    assert any(line.startswith(f"Test:  [0/{rank0_batches}]  eta: ") for line in lines)
    assert any("IoU metric: bbox" in line for line in lines)
    record = json.loads((tmp_path / "log.txt").read_text().splitlines()[-1])
    assert record["test_loss"] > 0 and len(record["test_coco_eval_bbox"]) == 12
