"""The run config of the in-process run tests: tiny DINO, 64 px synthetic images, CPU, 1 epoch."""

from dataclasses import replace
from pathlib import Path

from tbx_train.config import DataConfig, RunConfig, run_preset


def tiny_run_config(root: str | Path, output_dir: str | Path, **train: object) -> RunConfig:
    """The `tiny` preset on the synthetic set at `root`; `train` overrides TrainConfig fields."""
    base = run_preset("tiny")
    return replace(
        base,
        model=replace(base.model, num_queries=50, num_select=50),  # 64 px: 85 encoder tokens
        data=DataConfig(
            data_root=str(root),
            train_sizes=(64,),
            val_size=64,
            max_size=64,
            crop_prob=0.0,  # the crop branch's sizes (384-600 px) do not fit 64 px images
            num_workers=0,
        ),
        train=replace(
            base.train,
            **{
                "epochs": 1,
                "print_freq": 1,
                "output_dir": str(output_dir),
                "device": "cpu",
                **train,
            },
        ),
    )
