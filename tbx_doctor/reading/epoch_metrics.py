"""Per-epoch numbers of a run's `log.txt` that `reading.run_dir` does not keep: AP50, the EMA
model's AP/AP50 and the record's wall-clock stamp (`now_time`).

DINO writes one JSON object per epoch with `test_coco_eval_bbox` (the 12 COCO stats of the
regular model: [0] AP@[.5:.95], [1] AP50) and, with `use_ema`, `ema_test_coco_eval_bbox`.
Lines that are not JSON objects with an integer `epoch` are skipped (the doctor counts them).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tbx_doctor.reading.run_dir import parse_duration


@dataclass(frozen=True)
class EpochMetrics:
    """One log.txt record: COCO AP numbers (fractions, not %), epoch wall time, time stamp."""

    epoch: int
    train_loss: float | None
    ap: float | None
    ap50: float | None
    ema_ap: float | None
    ema_ap50: float | None
    seconds: float | None
    stamp: datetime | None  # when the record was written (local time, as the job printed it)


def _stat(record: dict, key: str, index: int) -> float | None:
    stats = record.get(key)
    if not isinstance(stats, list) or len(stats) <= index:
        return None
    value = stats[index]
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _stamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _seconds(value: object) -> float | None:
    if isinstance(value, str):
        return parse_duration(value)
    return float(value) if isinstance(value, (int, float)) else None


def read_epoch_metrics(output_dir: Path | None) -> dict[int, EpochMetrics]:
    """epoch -> metrics from `<output_dir>/log.txt` (empty when absent). Later lines win."""
    found: dict[int, EpochMetrics] = {}
    if output_dir is None or not (output_dir / "log.txt").is_file():
        return found
    with (output_dir / "log.txt").open("rb") as handle:
        for raw in handle:
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
                continue
            loss = record.get("train_loss")
            found[record["epoch"]] = EpochMetrics(
                epoch=record["epoch"],
                train_loss=float(loss) if isinstance(loss, (int, float)) else None,
                ap=_stat(record, "test_coco_eval_bbox", 0),
                ap50=_stat(record, "test_coco_eval_bbox", 1),
                ema_ap=_stat(record, "ema_test_coco_eval_bbox", 0),
                ema_ap50=_stat(record, "ema_test_coco_eval_bbox", 1),
                seconds=_seconds(record.get("epoch_time")),
                stamp=_stamp(record.get("now_time")),
            )
    return found
