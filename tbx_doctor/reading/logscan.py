"""Scan a SLURM job log (`.out`/`.err`, plain or .gz) into line-numbered events and epoch stats.

Contract: `scan_log(path) -> LogScan`. Memory is bounded: each event kind keeps its first and
last few lines, iteration lines are folded into one `EpochProgress` per epoch (first and last
line, running-average loss at both ends and its sampled peak), never a list of all of them.
Line numbers are 1-based and count b"\\n"; text is decoded UTF-8 with replacement, ANSI colour
codes and NULs removed. The records it fills live in `records.py`.
"""

from __future__ import annotations

import re
from pathlib import Path

from tbx_doctor.reading import patterns as P
from tbx_doctor.reading.needles import needles_in
from tbx_doctor.reading.records import (
    ITERATIONS_ONLY,
    LONG_KINDS,
    LONG_TEXT_LIMIT,
    SAMPLE_EVERY,
    TEXT_LIMIT,
    APReading,
    EpochProgress,
    EventList,
    Line,
    LogScan,
    decode,
    to_float,
)
from tbx_doctor.reading.stream import ReadStatus, iter_chunks

LOSS_WINDOW = 320  # bytes at the head of an iteration line that hold the total loss
# Bytes from the total's "  loss: " to past its "value (average)": "12345.6789 (nan)" fits.
LOSS_FIELD = 30


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
        self.progress_shape: tuple[re.Pattern[bytes], tuple[bytes, ...]] | None = None
        # True while the current epoch's lines have no "n" up to their total loss's average
        # (DINO's do: "lr", "class_error", then "loss"). Then one memchr up to there stands
        # for the two "nan"/"inf" searches of the head: both words hold an "n", and the total
        # is the sum of the terms after it, so a NaN or inf in any of them shows in it.
        self.quick_nan_test = False

    def line(self, raw: bytes, limit: int = TEXT_LIMIT, lineno: int = 0) -> Line:
        text, bad = decode(raw, limit)
        if bad:
            self.scan.replaced_lines += 1
        return Line(self.label, lineno or self.lineno, text)

    def feed(self, buf: bytes, pos: int, end: int) -> None:
        """Scan buf[pos:end]. Hot path inlined with local state: iteration lines of the current
        epoch and `Test:` lines (~95% of a real log) cost a prefix test and, for iteration
        lines, the NaN test (start_epoch's quick test, inlined: a bounded find and a memchr)."""
        startswith, find, first, scan = buf.startswith, buf.find, pos, self.scan
        prefix, progress, quick = self.current_prefix, self.current, self.quick_nan_test
        lineno, count, phase = self.lineno, progress.lines if progress else 0, scan.last_phase
        last_pos, last_end, last_no, tests = -1, -1, 0, 0
        window, field, every, test_prefix = LOSS_WINDOW, LOSS_FIELD, SAMPLE_EVERY, P.TEST_PREFIX
        while pos < end:
            nl = find(b"\n", pos, end)
            if nl < 0:
                nl = end
            lineno += 1
            if startswith(prefix, pos):  # the prefix of no line while there is no epoch
                count += 1
                last_pos, last_end, last_no, phase = pos, nl, lineno, "train"
                # The head may run into the next line: nonfinite() looks within this one only.
                head = pos + window
                if quick:
                    total = find(b"  loss: ", pos, head)
                    bad = total < 0 or find(b"n", pos, total + field) >= 0
                else:
                    bad = True
                if bad and (find(b"nan", pos, head) >= 0 or find(b"inf", pos, head) >= 0):
                    self.lineno = lineno
                    self.nonfinite(buf, pos, nl)
                if not count % every:
                    self.lineno = lineno
                    self.sample_loss(progress, buf, pos, nl)
            elif startswith(test_prefix, pos):
                tests, phase = tests + 1, "test"
            elif nl > pos:
                # Slow path: hand the local state to the object, let it classify, take it back.
                self._sync(progress, count, buf, last_pos, last_end, last_no, tests, phase, lineno)
                last_pos, tests = -1, 0
                self.dispatch(buf, pos, nl)
                prefix, progress, phase = self.current_prefix, self.current, scan.last_phase
                count, quick = progress.lines if progress else 0, self.quick_nan_test
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
        head = min(nl, pos + P.D2_ITER_HEAD)
        if buf.startswith(P.ITERATION_PREFIX, pos):
            self.iteration(buf, pos, nl)
        elif buf.find(P.D2_ITER_NEEDLE, pos, head) >= 0 and P.D2_ITERATION.search(buf, pos, head):
            self.d2_iteration(buf, pos, nl)  # before the ~50 needles other() tries
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
        # "Epoch: [34/80]" (D-FINE, RT-DETR: epoch of epochs) counts as epoch 34
        if not key.replace(b"/", b"", 1).isdigit() or key.startswith(b"/"):
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
        epoch = int(key.split(b"/")[0])
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
        total = buf.find(b"  loss: ", pos, min(nl, pos + LOSS_WINDOW))
        self.quick_nan_test = total >= 0 and buf.find(b"n", pos, total + LOSS_FIELD) < 0

    def loss(self, buf: bytes, pos: int, nl: int) -> float | None:
        match = P.RUNNING_LOSS.search(buf, pos, min(nl, pos + 2 * TEXT_LIMIT))
        return to_float(match.group(2)) if match else None

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

    def classify(self, buf: bytes, pos: int, nl: int) -> tuple[re.Match[bytes] | None, str]:
        """The kind of a line that is no DINO iteration or `Test:` line, and the match."""
        match = P.LINE_START.match(buf, pos, nl)
        if match is not None:
            return match, (match.lastgroup or "").split("__")[0]
        end = min(nl, pos + P.ANYWHERE_WINDOW)
        if self.progress_shape is not None and nl == end:
            # Another trainer's progress lines are ~all of its log: the shape seen last is
            # tried first, unless the line holds a word that may be an error or a NaN.
            pattern, needles = self.progress_shape
            find = buf.find
            if _any_in(find, needles, pos, end) and not _any_in(find, P.ALARM_NEEDLES, pos, end):
                found = pattern.search(buf, pos, end)
                if found is not None:
                    return found, "calm_progress"
        match, kind = None, ""
        if nl > end:
            # tqdm frames joined by \r: what ended them (SLURM's line, an error, the epoch
            # line) comes at the line's end, after bars that all look alike
            match, kind = _search_anywhere(buf, nl - P.ANYWHERE_WINDOW, nl)
        if match is None or kind in ("tqdm_bar", "progress"):
            head, head_kind = _search_anywhere(buf, pos, end)
            if head is not None and (match is None or head_kind not in ("tqdm_bar",)):
                match, kind = head, head_kind
        if kind == "progress":
            self.progress_shape = (match.re, P.PATTERN_NEEDLES[match.re])
        return match, kind

    def other(self, buf: bytes, pos: int, nl: int) -> None:
        match, kind = self.classify(buf, pos, nl)
        if match is None:
            return
        calm = kind == "calm_progress"  # no NaN/inf/error word in it: nothing more to look for
        kind = "progress" if calm else kind
        if match.start() - pos > TEXT_LIMIT // 2:  # quote the message, not the bars before it
            start = buf.rfind(b"\r", pos, match.start()) + 1 or max(pos, match.start() - 80)
            pos = max(pos, start, match.start() - 160)
        if kind in ("iteration", "test_line"):  # prefixed by ANSI codes or a rank tag
            inner = match.start()
            self.iteration(buf, inner, nl) if kind == "iteration" else self.test_line(
                buf, inner, nl
            )
            return
        if kind == "d2_iteration":
            self.d2_iteration(buf, pos, nl)
            return
        if kind == "slurm_cancel":
            kind = P.slurm_cancel_kind(decode(buf[pos:nl])[0])
        line = self.add(kind, buf[pos:nl])
        if kind == "exception":  # "torch.OutOfMemoryError: CUDA out of memory": both kinds
            inner, inner_kind = _search_anywhere(buf, pos, min(nl, pos + P.ANYWHERE_WINDOW))
            if inner is not None and inner_kind not in ("iteration", "test_line"):
                self.add(inner_kind, buf[pos:nl])
        if kind == "progress" and (value := P.LOSS_VALUE.search(buf, pos, nl)):
            number = to_float(value.group(1))
            if number is not None:
                self.scan.loss_trend.add(number, line)
        if kind == "ap_line":
            self.ap(line)
        elif (
            not calm
            and kind not in ("nonfinite", "command", "namespace")
            and P.NONFINITE_FIELD.search(buf, pos, min(nl, pos + 4096))
        ):
            self.add("nonfinite", buf[pos:nl])

    def d2_iteration(self, buf: bytes, pos: int, nl: int) -> None:
        """A detectron2 / detrex metrics line (`iter: N  total_loss: x ...`, one per ~20
        iterations): progress under ITERATIONS_ONLY, its loss a windowed median, not a mean."""
        progress = self.scan.epochs.setdefault(ITERATIONS_ONLY, EpochProgress(ITERATIONS_ONLY))
        line = self.line(buf[pos:nl])
        match = P.D2_ITER.search(buf, pos, nl)
        iteration = int(match.group(1)) if match else -1
        loss_match = P.D2_TOTAL_LOSS.search(buf, pos, nl)
        loss = to_float(loss_match.group(1)) if loss_match else None
        if progress.first is None:
            progress.first, progress.first_iter, progress.loss_first = line, iteration, loss
        progress.last, progress.last_iter, progress.loss_last = line, iteration, loss
        progress.lines += 1
        if loss is not None and (progress.loss_peak is None or loss > progress.loss_peak):
            progress.loss_peak, progress.loss_peak_line = loss, line
        self.scan.last_phase = "train"
        if buf.find(b"nan", pos, nl) >= 0 or buf.find(b"inf", pos, nl) >= 0:
            self.nonfinite(buf, pos, nl)

    def epoch_total(self, buf: bytes, pos: int, nl: int, line: Line) -> None:
        match = P.EPOCH_TOTAL.match(buf, pos, nl)
        if match:
            epoch = int(match.group(1))
            self.scan.epochs.setdefault(epoch, EpochProgress(epoch)).total_time = line

    def ap(self, line: Line) -> None:
        value = to_float(line.text.rsplit("=", 1)[-1].strip().encode())
        if value is None:
            return
        epochs = [e for e in self.scan.epochs if e >= 0]
        epoch = self.current.epoch if self.current is not None and epochs else None
        if not any(r.epoch == epoch and epoch is not None for r in self.scan.aps):
            self.scan.aps.append(APReading(epoch, value, line))  # first table = regular model


def _any_in(find, needles: tuple[bytes, ...], pos: int, end: int) -> bool:
    for needle in needles:  # noqa: SIM110 (a generator costs more than the finds here)
        if find(needle, pos, end) >= 0:
            return True
    return False


def _search_anywhere(buf: bytes, pos: int, end: int) -> tuple[re.Match[bytes] | None, str]:
    """The first kind (in NEEDLES order) whose needle occurs in buf[pos:end] and whose pattern
    matches there."""
    found = needles_in(buf, pos, end)
    if not found:
        return None, ""
    tried: set[re.Pattern[bytes]] = set()
    for needle, kind, pattern in P.NEEDLES:
        if needle in found and pattern not in tried:
            tried.add(pattern)
            if match := pattern.search(buf, pos, end):
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
