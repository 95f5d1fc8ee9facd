"""Scan a SLURM job log (`.out`/`.err`, plain or .gz) into line-numbered events and epoch stats.

Contract: `scan_log(path) -> LogScan`. Memory is bounded: each event kind keeps its first and
last few lines, iteration lines are folded into one `EpochProgress` per epoch (first and last
line, running-average loss at both ends and its sampled peak), never a list of all of them.
Line numbers are 1-based and count b"\\n"; text is decoded UTF-8 with replacement, ANSI colour
codes and NULs removed.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from tbx_doctor.parsing import patterns as P
from tbx_doctor.parsing.stream import ReadStatus, iter_chunks

KEEP_FIRST = 8
KEEP_LAST = 8
TEXT_LIMIT = 400
LONG_TEXT_LIMIT = 65536  # Namespace / Command lines carry the run's arguments
LONG_KINDS = frozenset({"namespace", "command", "run_plan"})
SAMPLE_EVERY = 32  # iteration lines between two loss samples
LOSS_WINDOW = 320  # bytes at the head of an iteration line that hold the total loss


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


def _to_float(raw: bytes) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None


class _Scanner:
    """Feeds whole-line chunks; dispatches iteration/test lines by prefix, others by KEY_LINE."""

    def __init__(self, scan: LogScan, label: str) -> None:
        self.scan = scan
        self.label = label
        self.lineno = 0
        self.current: EpochProgress | None = None
        self.current_key = b""
        self.current_prefix = b"\x00never"
        # Last iteration line of the current epoch, kept as (chunk, start, end) and decoded
        # only when the epoch changes or the chunk ends.
        self.last_buf, self.last_pos, self.last_end, self.last_lineno = b"", 0, 0, 0

    def line(self, raw: bytes, limit: int = TEXT_LIMIT, lineno: int = 0) -> Line:
        text, bad = decode(raw, limit)
        if bad:
            self.scan.replaced_lines += 1
        return Line(self.label, lineno or self.lineno, text)

    def feed(self, buf: bytes, pos: int, end: int) -> None:
        """Scan buf[pos:end]. Hot path inlined with local state: iteration lines of the current
        epoch and `Test:` lines (~95% of a real log) cost a prefix test and two bounded finds."""
        startswith, find, first, scan = buf.startswith, buf.find, pos, self.scan
        prefix, progress = self.current_prefix, self.current
        lineno, count, phase = self.lineno, progress.lines if progress else 0, scan.last_phase
        last_pos, last_end, last_no, tests = -1, -1, 0, 0
        while pos < end:
            nl = find(b"\n", pos, end)
            if nl < 0:
                nl = end
            lineno += 1
            if progress is not None and startswith(prefix, pos):
                count += 1
                last_pos, last_end, last_no, phase = pos, nl, lineno, "train"
                # The total `loss` is the first loss field and the sum of all terms: a NaN/inf
                # anywhere shows there, so only the line's head is searched (lines are ~4 KB).
                head = pos + LOSS_WINDOW if pos + LOSS_WINDOW < nl else nl
                bad = find(b"nan", pos, head) >= 0 or find(b"inf", pos, head) >= 0
                if bad or count % SAMPLE_EVERY == 0:
                    self.lineno = lineno
                    if bad:
                        self.nonfinite(buf, pos, nl)
                    if count % SAMPLE_EVERY == 0:
                        self.sample_loss(progress, buf, pos, nl)
            elif startswith(P.TEST_PREFIX, pos):
                tests, phase = tests + 1, "test"
            elif nl > pos:
                # Slow path: hand the local state to the object, let it classify, take it back.
                self._sync(progress, count, buf, last_pos, last_end, last_no, tests, phase, lineno)
                last_pos, tests = -1, 0
                self.dispatch(buf, pos, nl)
                prefix, progress, phase = self.current_prefix, self.current, scan.last_phase
                count = progress.lines if progress else 0
            pos = nl + 1
        self._sync(progress, count, buf, last_pos, last_end, last_no, tests, phase, lineno)
        self.scan.last_line = self.line(buf[max(first, buf.rfind(b"\n", first, end - 1) + 1) : end])
        self.finish_epoch()
        self.last_buf = b""  # do not keep the chunk alive past feed()

    def _sync(  # the hot loop's locals, written back in one place
        self,
        progress: EpochProgress | None,
        count: int,
        buf: bytes,
        last_pos: int,
        last_end: int,
        last_no: int,
        tests: int,
        phase: str,
        lineno: int,
    ) -> None:
        """Write the hot loop's local counters back before a slow-path call or at chunk end."""
        self.lineno = lineno
        self.scan.test_lines += tests
        self.scan.last_phase = phase
        if progress is not None:
            progress.lines = count
        if last_pos >= 0:
            self.last_buf, self.last_pos, self.last_end, self.last_lineno = (
                buf,
                last_pos,
                last_end,
                last_no,
            )

    def dispatch(self, buf: bytes, pos: int, nl: int) -> None:
        """A line that is not an iteration line of the current epoch nor a `Test:` line."""
        if buf.startswith(P.ITERATION_PREFIX, pos):
            self.iteration(buf, pos, nl)
        else:
            self.other(buf, pos, nl)

    def test_line(self, buf: bytes, pos: int, nl: int) -> None:
        """A `Test:` line behind a prefix (ANSI colour, rank tag): slow path."""
        self.scan.test_lines += 1
        self.scan.last_phase = "test"

    def finish_epoch(self) -> None:
        """Fold the last iteration line seen into the current epoch's summary."""
        progress, buf, pos, end = self.current, self.last_buf, self.last_pos, self.last_end
        if progress is None or not buf:
            return
        progress.last = self.line(buf[pos:end], TEXT_LIMIT, self.last_lineno)
        progress.loss_last = self.loss(buf, pos, end)
        match = P.ITERATION.match(buf, pos, pos + 64)
        if match:
            progress.last_iter, progress.total = int(match.group(2)), int(match.group(3))

    def iteration(self, buf: bytes, pos: int, nl: int) -> None:
        close = buf.find(b"]", pos + 8, pos + 24)
        key = buf[pos + 8 : close]
        if not key.isdigit():  # "Epoch: [x" that is not an iteration line
            self.other(buf, pos, nl)
            return
        if buf.startswith(b"] Total time", close):
            self.epoch_total(buf, pos, nl, self.add("epoch_total", buf[pos:nl]))
            return
        self.scan.last_phase = "train"
        if key != self.current_key or self.current is None:
            self.start_epoch(buf, pos, nl, key)
        progress = self.current
        progress.lines += 1
        head = min(nl, pos + LOSS_WINDOW)
        if buf.find(b"nan", pos, head) >= 0 or buf.find(b"inf", pos, head) >= 0:
            self.nonfinite(buf, pos, nl)
        self.last_buf, self.last_pos, self.last_end = buf, pos, nl
        self.last_lineno = self.lineno
        if progress.lines % SAMPLE_EVERY == 0:
            self.sample_loss(progress, buf, pos, nl)

    def start_epoch(self, buf: bytes, pos: int, nl: int, key: bytes) -> None:
        self.finish_epoch()
        self.last_buf = b""
        epoch = int(key) if key.isdigit() else -1
        progress = self.scan.epochs.get(epoch)
        if progress is None:
            progress = self.scan.epochs[epoch] = EpochProgress(epoch)
            match = P.ITERATION.match(buf, pos, pos + 64)
            progress.first_iter = int(match.group(2)) if match else -1
            progress.first = self.line(buf[pos:nl])
            progress.loss_first = self.loss(buf, pos, nl)
        self.current, self.current_key = progress, key
        # "Epoch: [e]  [" starts every further iteration line of this epoch (hot path in feed).
        self.current_prefix = b"Epoch: [" + key + b"]  ["

    def loss(self, buf: bytes, pos: int, nl: int) -> float | None:
        match = P.RUNNING_LOSS.search(buf, pos, min(nl, pos + 2 * TEXT_LIMIT))
        return _to_float(match.group(2)) if match else None

    def sample_loss(self, progress: EpochProgress, buf: bytes, pos: int, nl: int) -> None:
        value = self.loss(buf, pos, nl)
        if value is not None and (progress.loss_peak is None or value > progress.loss_peak):
            progress.loss_peak, progress.loss_peak_line = value, self.line(buf[pos:nl])

    def nonfinite(self, buf: bytes, pos: int, nl: int) -> None:
        if P.NONFINITE_FIELD.search(buf, pos, nl):
            self.add("nonfinite", buf[pos:nl])

    def add(self, kind: str, raw: bytes) -> Line:
        line = self.line(raw, LONG_TEXT_LIMIT if kind in LONG_KINDS else TEXT_LIMIT)
        self.scan.events.setdefault(kind, EventList()).add(line)
        return line

    def other(self, buf: bytes, pos: int, nl: int) -> None:
        match = P.LINE_START.match(buf, pos, nl)
        if match is not None:
            kind = (match.lastgroup or "").split("__")[0]
        else:
            match, kind = _search_anywhere(buf, pos, min(nl, pos + P.ANYWHERE_WINDOW))
        if match is None:
            return
        if kind in ("iteration", "test_line"):  # prefixed by ANSI codes or a rank tag
            inner = match.start()
            self.iteration(buf, inner, nl) if kind == "iteration" else self.test_line(
                buf, inner, nl
            )
            return
        if kind == "slurm_cancel":
            kind = P.slurm_cancel_kind(decode(buf[pos:nl])[0])
        line = self.add(kind, buf[pos:nl])
        if kind == "exception":  # "torch.OutOfMemoryError: CUDA out of memory": both kinds
            inner, inner_kind = _search_anywhere(buf, pos, min(nl, pos + P.ANYWHERE_WINDOW))
            if inner is not None and inner_kind not in ("iteration", "test_line"):
                self.add(inner_kind, buf[pos:nl])
        if kind == "ap_line":
            self.ap(line)
        elif kind not in ("nonfinite", "command", "namespace") and P.NONFINITE_FIELD.search(
            buf, pos, min(nl, pos + 4096)
        ):
            self.add("nonfinite", buf[pos:nl])

    def epoch_total(self, buf: bytes, pos: int, nl: int, line: Line) -> None:
        match = P.EPOCH_TOTAL.match(buf, pos, nl)
        if match:
            epoch = int(match.group(1))
            self.scan.epochs.setdefault(epoch, EpochProgress(epoch)).total_time = line

    def ap(self, line: Line) -> None:
        value = _to_float(line.text.rsplit("=", 1)[-1].strip().encode())
        if value is None:
            return
        epochs = [e for e in self.scan.epochs if e >= 0]
        epoch = self.current.epoch if self.current is not None and epochs else None
        if not any(r.epoch == epoch and epoch is not None for r in self.scan.aps):
            self.scan.aps.append(APReading(epoch, value, line))  # first table = regular model


def _search_anywhere(buf: bytes, pos: int, end: int) -> tuple[re.Match[bytes] | None, str]:
    find = buf.find
    for needle, kind, pattern in P.NEEDLES:
        if find(needle, pos, end) >= 0 and (match := pattern.search(buf, pos, end)):
            return match, kind
    return None, ""


def scan_log(path: Path, label: str | None = None) -> LogScan:
    """Read one log file fully (streaming) and return what it showed."""
    status = ReadStatus(path)
    scan = LogScan(path=path, status=status)
    scanner = _Scanner(scan, label or str(path))
    for chunk, start, end in iter_chunks(path, status):
        scanner.feed(chunk, start, end)
    scan.lines = scanner.lineno
    return scan
