"""Read a DINO-style run output directory: `log.txt` (one JSON object per epoch) and
`config_args_all.json` (the full argument set). Both are small; malformed lines are counted,
not fatal, and every record keeps its line number as evidence."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from tbx_doctor.reading.logscan import Line, decode

CONFIG_NAMES = ("config_args_all.json", "config.json")


@dataclass(frozen=True)
class EpochRecord:
    """One `log.txt` line: the epoch's mean train loss, AP@[.5:.95] and wall time."""

    epoch: int
    train_loss: float | None
    ap: float | None
    seconds: float | None
    line: Line


@dataclass
class OutputDir:
    """What a run's output directory holds (None/empty where a file is absent)."""

    path: Path
    records: list[EpochRecord] = field(default_factory=list)
    bad_lines: int = 0
    config: dict[str, object] = field(default_factory=dict)
    config_file: Path | None = None
    checkpoint: Path | None = None

    @property
    def last_epoch(self) -> EpochRecord | None:
        return max(self.records, key=lambda r: r.epoch) if self.records else None


def looks_like_output_dir(path: Path) -> bool:
    """True for a directory holding a DINO `log.txt` or a config dump."""
    return path.is_dir() and any((path / n).is_file() for n in ("log.txt", *CONFIG_NAMES))


def parse_duration(text: str) -> float | None:
    """ "[D day(s), ]H:MM:SS" -> seconds."""
    parts = text.strip().split(", ")
    days = int(parts[0].split()[0]) if len(parts) == 2 else 0
    try:
        h, m, s = (float(x) for x in parts[-1].split(":"))
    except ValueError:
        return None
    return days * 86400 + h * 3600 + m * 60 + s


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    if isinstance(value, float):
        return value  # NaN / inf are kept: they are findings, not parse errors
    return None


def _record(obj: dict, line: Line) -> EpochRecord | None:
    epoch = obj.get("epoch")
    if not isinstance(epoch, int):
        return None
    bbox = obj.get("test_coco_eval_bbox")
    ap = _number(bbox[0]) if isinstance(bbox, list) and bbox else None
    seconds = obj.get("epoch_time")
    seconds = parse_duration(seconds) if isinstance(seconds, str) else _number(seconds)
    return EpochRecord(epoch, _number(obj.get("train_loss")), ap, seconds, line)


def read_log_txt(path: Path, out: OutputDir) -> None:
    """Parse `log.txt` JSON lines into out.records (evidence text is shortened)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                out.bad_lines += 1
                continue
            # Quote the part that names the epoch (the lines are ~15 KB of loss terms).
            at = max(0, raw.find(b'"epoch":'))
            text = ("..." if at else "") + decode(raw[at : at + 120], 120)[0]
            record = _record(obj, Line(str(path), number, text)) if isinstance(obj, dict) else None
            if record is None:
                out.bad_lines += 1
            else:
                out.records.append(record)


def read_output_dir(path: Path) -> OutputDir:
    """Read whatever of log.txt / config_args_all.json / checkpoint.pth the directory holds."""
    out = OutputDir(path)
    log_txt = path / "log.txt"
    if log_txt.is_file():
        read_log_txt(log_txt, out)
    for name in CONFIG_NAMES:
        candidate = path / name
        if candidate.is_file():
            try:
                loaded = json.loads(candidate.read_text(encoding="utf-8", errors="replace"))
            except json.JSONDecodeError:
                continue
            if isinstance(loaded, dict):
                out.config, out.config_file = loaded, candidate
                break
    checkpoint = path / "checkpoint.pth"
    out.checkpoint = checkpoint if checkpoint.is_file() else None
    return out
