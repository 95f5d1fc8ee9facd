"""Training logs in the official DINO format, and the per-epoch JSON-lines file.

The iteration line (DESIGN 4.4; tbx-doctor parses it):

    Epoch: [e]  [  i/N]  eta: H:MM:SS  lr: 0.000100  class_error: 100.00  loss: 12.3456 (13.0000)
    ...  time: 0.5000  data: 0.0100  max mem: 1921

Fields are separated by two spaces; the counter is padded to the width of N; each loss meter shows
the median of its last 20 values and, in brackets, the mean over the epoch; `lr` and
`class_error` show the last value; `time`/`data` are seconds per iteration (mean of the window);
`max mem` (MB of CUDA memory) is absent on CPU. Only rank 0 writes (callers pass `enabled`).
"""

from __future__ import annotations

import datetime
import json
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

WINDOW = 20  # iterations in a meter's median, as DINO's MetricLogger
DELIMITER = "  "


def format_duration(seconds: float) -> str:
    """`H:MM:SS` the way DINO prints it (`2 days, 6:18:48` past a day)."""
    return str(datetime.timedelta(seconds=int(seconds)))


class SmoothedValue:
    """A series with a windowed median/mean and a global mean; `fmt` picks what str() shows."""

    def __init__(self, window: int = WINDOW, fmt: str = "{median:.4f} ({global_avg:.4f})") -> None:
        self.window: deque[float] = deque(maxlen=window)
        self.total = 0.0
        self.count = 0
        self.fmt = fmt

    def update(self, value: float, n: int = 1) -> None:
        """Record `value`, counting it `n` times in the global mean."""
        self.window.append(float(value))
        self.total += float(value) * n
        self.count += n

    @property
    def median(self) -> float:
        return statistics.median(self.window) if self.window else 0.0

    @property
    def avg(self) -> float:
        return statistics.fmean(self.window) if self.window else 0.0

    @property
    def global_avg(self) -> float:
        return self.total / self.count if self.count else 0.0

    @property
    def value(self) -> float:
        return self.window[-1] if self.window else 0.0

    def __str__(self) -> str:
        return self.fmt.format(
            median=self.median, avg=self.avg, global_avg=self.global_avg, value=self.value
        )


def _default_meters() -> dict[str, SmoothedValue]:
    # lr and class_error first and showing their last value, as DINO's train_one_epoch adds them.
    return {
        "lr": SmoothedValue(window=1, fmt="{value:.6f}"),
        "class_error": SmoothedValue(window=1, fmt="{value:.2f}"),
    }


class ProgressBar:
    """A rich progress bar for a person at a terminal; log lines are printed above it.

    Batch jobs (stdout not a terminal) never create one: their logs stay plain lines.
    """

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._progress = Progress(
            "{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
        )
        self._task: object | None = None

    def start(self, description: str, total: int) -> None:
        """Show a fresh bar (the previous one, if any, is removed)."""
        self.stop()
        self._progress.start()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, steps: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, steps)  # type: ignore[arg-type]

    def write(self, line: str) -> None:
        """Print a log line above the bar, exactly as given (no markup, no highlighting)."""
        self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)  # type: ignore[arg-type]
            self._task = None
        self._progress.stop()


class MetricLogger:
    """Named meters plus iteration timing; prints DINO's lines through `write`.

    Use: `start(header, total)`, then per iteration `mark_data()` when its batch is ready,
    `update(...)`, `tick(i)` when it is done; `finish()` prints the total time line.
    """

    def __init__(
        self,
        print_freq: int = 10,
        write: Callable[[str], None] | None = None,
        show_memory: bool = False,
        with_lr: bool = True,
        progress: ProgressBar | None = None,
    ) -> None:
        self.meters = _default_meters()
        if not with_lr:
            del self.meters["lr"]
        self.print_freq = print_freq
        self.progress = progress
        self.write = progress.write if progress else (write or _print_line)
        self.show_memory = show_memory
        self.header = ""
        self.total = 0
        self.iter_time = SmoothedValue(fmt="{avg:.4f}")
        self.data_time = SmoothedValue(fmt="{avg:.4f}")
        self._start = self._last = time.perf_counter()
        self._iterations = 0

    def update(self, **values: float) -> None:
        """Add one value to each named meter (created on first use)."""
        for name, value in values.items():
            self.meters.setdefault(name, SmoothedValue()).update(float(value))

    def start(self, header: str, total: int) -> None:
        """Begin a pass of `total` iterations whose lines start with `header`."""
        self.header, self.total = header, total
        self._start = self._last = time.perf_counter()
        self._iterations = 0
        if self.progress:
            self.progress.start(header, total)

    def mark_data(self, iterations: int = 1) -> None:
        """The batch (or `iterations` micro-batches) is loaded: record the wait per iteration."""
        self.data_time.update((time.perf_counter() - self._last) / iterations, n=iterations)

    def tick(self, index: int, iterations: int = 1) -> None:
        """Iterations `index - iterations + 1 .. index` are done; print a line if one is due.

        DINO prints at multiples of print_freq and at the last iteration; when one optimizer step
        covers several micro-batches, the line carries the multiple the step covered.
        """
        now = time.perf_counter()
        self.iter_time.update((now - self._last) / iterations, n=iterations)
        self._last = now
        self._iterations += iterations
        if self.progress:
            self.progress.advance(iterations)
        first = index - iterations + 1
        due = -(-first // self.print_freq) * self.print_freq  # first multiple >= first
        if due <= index:
            self.write(self.iteration_line(due))
        elif index == self.total - 1:
            self.write(self.iteration_line(index))

    def iteration_line(self, index: int) -> str:
        """The DINO line for iteration `index` of `total`."""
        width = len(str(self.total))
        eta = self.iter_time.global_avg * (self.total - index)
        parts = [
            self.header,
            f"[{index:{width}d}/{self.total}]",
            f"eta: {format_duration(eta)}",
            str(self),
            f"time: {self.iter_time}",
            f"data: {self.data_time}",
        ]
        if self.show_memory:
            parts.append(f"max mem: {_max_memory_mb():.0f}")
        return DELIMITER.join(parts)

    def finish(self) -> float:
        """Print `<header> Total time: H:MM:SS (s / it)`; return the elapsed seconds."""
        elapsed = time.perf_counter() - self._start
        per_it = elapsed / max(self._iterations, 1)
        if self.progress:
            self.progress.stop()
        self.write(f"{self.header} Total time: {format_duration(elapsed)} ({per_it:.4f} s / it)")
        return elapsed

    def __str__(self) -> str:
        return DELIMITER.join(f"{name}: {meter}" for name, meter in self.meters.items())

    def averaged_line(self) -> str:
        """`Averaged stats: ...` (meters only), printed at the end of a pass."""
        return f"Averaged stats: {self}"

    def global_averages(self) -> dict[str, float]:
        """Each meter's mean over the pass: the values of log.txt."""
        return {name: meter.global_avg for name, meter in self.meters.items()}


def _print_line(line: str) -> None:
    print(line, flush=True)


def _max_memory_mb() -> float:
    import torch  # only reached on CUDA runs

    return torch.cuda.max_memory_allocated() / (1024.0 * 1024.0)


def epoch_record(
    train_stats: dict[str, float],
    test_stats: dict[str, float],
    coco_stats: list[float] | None,
    epoch: int,
    n_parameters: int,
    epoch_seconds: float,
    extra: dict[str, object] | None = None,
) -> dict[str, object]:
    """One log.txt line in the official key layout (train_*, test_*, test_coco_eval_bbox, ...)."""
    record: dict[str, object] = {f"train_{k}": v for k, v in train_stats.items()}
    record.update({f"test_{k}": v for k, v in test_stats.items()})
    if coco_stats is not None:
        record["test_coco_eval_bbox"] = [float(x) for x in coco_stats]
    record.update(extra or {})
    record["epoch"] = epoch
    record["n_parameters"] = n_parameters
    record["now_time"] = str(datetime.datetime.now())
    record["epoch_time"] = format_duration(epoch_seconds)
    return record


def append_epoch_record(output_dir: str | Path, record: dict[str, object]) -> Path:
    """Append `record` as one JSON line to `output_dir/log.txt`."""
    path = Path(output_dir) / "log.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    return path


def is_interactive() -> bool:
    """A person is watching (stdout is a terminal), so a progress bar is worth drawing."""
    return sys.stdout.isatty()
