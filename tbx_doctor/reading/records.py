"""What a log scan keeps: quoted lines, per-kind event lists, per-epoch progress, AP readings.

The data model of `logscan.scan_log` (which fills it), kept apart from the scanner so that
each file holds one concept. Memory is bounded by construction: an `EventList` keeps the first
and last few lines of its kind, an `EpochProgress` the ends of its epoch, never every line.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from tbx_doctor.reading import patterns as P
from tbx_doctor.reading.stream import ReadStatus

KEEP_FIRST = 8
KEEP_LAST = 8
TEXT_LIMIT = 400
LONG_TEXT_LIMIT = 65536  # Namespace / Command lines carry the run's arguments
LONG_KINDS = frozenset({"namespace", "command", "run_plan"})
ITERATIONS_ONLY = -1  # `epochs` key of trainers that count iterations, not epochs (detectron2)
SAMPLE_EVERY = 32  # iteration lines between two loss samples


@dataclass(frozen=True)
class Line:
    """One quoted line of evidence: file path as given, 1-based line number, decoded text."""

    file: str
    line: int
    text: str


class EventList:
    """First KEEP_FIRST and last KEEP_LAST lines of one kind, plus how many there were."""

    def __init__(self) -> None:
        self.first: list[Line] = []
        self.tail: deque[Line] = deque(maxlen=KEEP_LAST)
        self.count = 0

    def add(self, line: Line) -> None:
        self.count += 1
        if len(self.first) < KEEP_FIRST:
            self.first.append(line)
        else:
            self.tail.append(line)

    def all(self) -> list[Line]:
        return self.first + list(self.tail)

    def last(self) -> Line | None:
        return self.tail[-1] if self.tail else (self.first[-1] if self.first else None)


@dataclass
class EpochProgress:
    """What the iteration lines of one epoch showed (no per-line storage)."""

    epoch: int
    total: int | None = None  # N in "[i/N]": iterations per epoch
    first_iter: int = -1
    last_iter: int = -1
    lines: int = 0
    first: Line | None = None
    last: Line | None = None
    loss_first: float | None = None  # running average at the first line
    loss_last: float | None = None  # running average at the last line (= epoch mean so far)
    loss_peak: float | None = None  # highest sampled running average
    loss_peak_line: Line | None = None
    total_time: Line | None = None  # "Epoch: [e] Total time: H:MM:SS"

    @property
    def finished(self) -> bool:
        """All iterations ran (last index N-1) or the epoch's "Total time" line was printed."""
        done = self.total is not None and self.last_iter >= self.total - 1
        return done or self.total_time is not None


@dataclass
class APReading:
    """A pycocotools AP@[.5:.95] value and the training epoch it followed (None: eval-only)."""

    epoch: int | None
    value: float
    line: Line


@dataclass
class LossTrend:
    """The total loss of other trainers' progress lines, folded as it streams by: its lowest
    value so far and the highest ratio any later value reached over the lowest before it."""

    lowest: float | None = None
    lowest_line: Line | None = None
    ratio: float = 0.0  # highest value / lowest-before-it seen
    peak: float | None = None
    peak_line: Line | None = None
    base: float | None = None  # the lowest value before the peak
    base_line: Line | None = None

    def add(self, value: float, line: Line) -> None:
        if not math.isfinite(value):
            return  # the NaN rule reports those
        if self.lowest is not None and self.lowest > 0 and value / self.lowest > self.ratio:
            self.ratio, self.peak, self.peak_line = value / self.lowest, value, line
            self.base, self.base_line = self.lowest, self.lowest_line
        if self.lowest is None or value < self.lowest:
            self.lowest, self.lowest_line = value, line


@dataclass
class LogScan:
    """Everything the scanner kept from one log file."""

    path: Path
    status: ReadStatus
    lines: int = 0
    events: dict[str, EventList] = field(default_factory=dict)
    epochs: dict[int, EpochProgress] = field(default_factory=dict)
    aps: list[APReading] = field(default_factory=list)
    test_lines: int = 0
    last_line: Line | None = None
    last_phase: str = ""  # "train" or "test": what the job was doing when the log ends
    replaced_lines: int = 0  # lines holding invalid UTF-8 (decoded with U+FFFD)
    loss_trend: LossTrend = field(default_factory=LossTrend)

    def get(self, kind: str) -> list[Line]:
        events = self.events.get(kind)
        return events.all() if events else []

    def first(self, kind: str) -> Line | None:
        events = self.events.get(kind)
        return events.first[0] if events and events.first else None

    def count(self, kind: str) -> int:
        events = self.events.get(kind)
        return events.count if events else 0


def decode(raw: bytes, limit: int = TEXT_LIMIT) -> tuple[str, bool]:
    """Bytes of one line -> clean text; True when invalid UTF-8 was replaced."""
    text = raw[:limit].decode("utf-8", "replace")
    bad = "\ufffd" in text
    text = P.ANSI.sub("", text).replace("\x00", "").rstrip("\r\n")
    return text, bad


def to_float(raw: bytes) -> float | None:
    """A number printed in a log, or None (not a number)."""
    try:
        return float(raw)
    except ValueError:
        return None
