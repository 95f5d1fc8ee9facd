"""Small real checkpoints shared by the inspect-ckpt tests (written once per session)."""

from pathlib import Path

import pytest
import torch

from doctor_ckpt.factory import official_args, official_checkpoint, tbx_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ckpt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ckpts")


@pytest.fixture(scope="session")
def finished_official(ckpt_dir: Path) -> Path:
    """The incident's checkpoint: epoch 49 of 50 finished, batch 1, 1 GPU."""
    path = ckpt_dir / "finished_official.pth"
    official_checkpoint(path, epoch=49)
    return path


@pytest.fixture(scope="session")
def unfinished_official(ckpt_dir: Path) -> Path:
    """Epoch 11 of 50 finished, with EMA, resumed from an earlier run."""
    path = ckpt_dir / "unfinished_official.pth"
    args = official_args(resume="/scratch/u/outputs/run_0/checkpoint.pth", pretrain_model_path=None)
    official_checkpoint(path, epoch=11, args=args, ema=True)
    return path


@pytest.fixture(scope="session")
def mid_epoch_tbx(ckpt_dir: Path) -> Path:
    """tbx-train: epochs 0..11 finished, stopped at micro-batch 1000 of epoch 12 (B1 x K2 x W1)."""
    path = ckpt_dir / "mid_epoch_tbx.pth"
    tbx_checkpoint(path, epoch=11, epochs_planned=50, next_iteration=1000)
    return path
