"""The data side of a run: data sets from a DataConfig, the step-layout loaders, the scorer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from tbx_train.config import ConfigError, DataConfig, RunConfig
from tbx_train.data import CocoSource, TransformConfig, build_datasets, collate_fn
from tbx_train.evaluation import (
    detections_from_results,
    evaluate_coco,
    evaluate_froc,
    load_coco_gt,
)
from tbx_train.sampler import ShardSampler, StepBatchSampler

Scorer = Callable[[dict[int, dict[str, Tensor]]], tuple[list[float], dict[str, object]]]


@dataclass
class RunData:
    """Data sets, loaders and the facts a checkpoint records about them."""

    train_set: Dataset
    val_set: Dataset
    train_sampler: StepBatchSampler
    train_loader: DataLoader
    val_loader: DataLoader
    train_json: str
    val_json: str
    categories: list[str]

    def report_lines(self) -> list[str]:
        """The start-up data report of both splits (counts; nothing dropped silently)."""
        return [*self.train_set.report.render(), *self.val_set.report.render()]


def transform_config(data: DataConfig) -> TransformConfig:
    """The data layer's augmentation settings from the run's DataConfig."""
    return TransformConfig(
        train_sizes=tuple(data.train_sizes),
        val_size=data.val_size,
        max_size=data.max_size,
        flip_prob=data.flip_prob,
        # DataConfig has no crop fields yet (crop_prob, crop_resize_sizes, crop_min, crop_max):
        # until the config carries them, runs keep flip + resize only.
        crop_prob=0.0,
    )


def build_run_data(config: RunConfig, rank: int, world_size: int) -> RunData:
    """Both splits with this rank's samplers; raises DataError for unusable data."""
    data, train = config.data, config.train
    source = CocoSource(
        train_json=Path(data.train_json_path()),
        val_json=Path(data.val_json_path()),
        image_root=Path(data.image_root_path()),
    )
    train_set, val_set = build_datasets(source, transform_config(data), seed=train.seed)
    sampler = StepBatchSampler(
        len(train_set), train.batch_size, train.grad_accum, world_size, rank, seed=train.seed
    )
    if sampler.steps_per_epoch < 1:
        raise ConfigError(
            f"{len(train_set)} training images cannot fill one optimizer step of "
            f"{train.effective_batch(world_size)} images; lower --batch-size or --grad-accum"
        )
    workers = {"num_workers": data.num_workers, "collate_fn": collate_fn}
    train_loader = DataLoader(train_set, batch_sampler=sampler, **workers)
    val_loader = DataLoader(
        val_set,
        batch_size=train.batch_size,
        sampler=ShardSampler(len(val_set), world_size, rank),
        **workers,
    )
    return RunData(
        train_set,
        val_set,
        sampler,
        train_loader,
        val_loader,
        str(source.train_json),
        str(source.val_json),
        list(train_set.category_names),
    )


def coco_scorer(val_json: str, write: Callable[[str], None] = print) -> Scorer:
    """Scores predictions on the val set: prints the pycocotools table and the FROC lines.

    Returns (the 12 COCO stats in table order, FROC numbers for log.txt).
    """
    coco_gt = load_coco_gt(val_json)

    def score(predictions: dict[int, dict[str, Tensor]]) -> tuple[list[float], dict[str, object]]:
        image_ids = sorted(predictions)
        detections = detections_from_results(image_ids, [predictions[i] for i in image_ids])
        coco = evaluate_coco(coco_gt, detections, echo=write)
        froc = evaluate_froc(coco_gt, detections)
        for line in froc.render():
            write(line)
        return list(coco.stats), froc.as_dict()

    return score
