"""The data side of a run: data sets from a DataConfig, the step-layout loaders, the scorer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from tbx_train.config import DataConfig, RunConfig
from tbx_train.data import CocoSource, TransformConfig, build_datasets, collate_fn
from tbx_train.sampler import ShardSampler, StepBatchSampler

Scorer = Callable[[dict[int, dict[str, Tensor]]], tuple[list[float], dict[str, float]]]


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
        from tbx_train.config import ConfigError

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


def coco_scorer(val_json: str) -> Scorer:
    """COCO bbox AP table (printed by pycocotools) for predictions on the val set.

    Stand-in until tbx_train.evaluation (data helper: COCOeval + FROC) is merged.
    """

    def score(predictions: dict[int, dict[str, Tensor]]) -> tuple[list[float], dict[str, float]]:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        gt = COCO(val_json)
        rows = []
        for image_id, det in predictions.items():
            boxes = det["boxes"].clone()
            boxes[:, 2:] -= boxes[:, :2]  # xyxy -> xywh
            for box, score_, label in zip(boxes, det["scores"], det["labels"], strict=True):
                rows.append(
                    {
                        "image_id": image_id,
                        "category_id": int(label),
                        "bbox": [float(v) for v in box],
                        "score": float(score_),
                    }
                )
        if not rows:
            return [0.0] * 12, {}
        evaluator = COCOeval(gt, gt.loadRes(rows), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        return [float(x) for x in evaluator.stats], {}

    return score
