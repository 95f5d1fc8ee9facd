"""Loss along the iterations of one log, for plots: the exact mean loss of each bin of
iterations, recovered from DINO's running averages.

An iteration line prints `loss: <window median> (<epoch running mean>)`. The window median is
0 on most TBX11K iterations (most images have no boxes), so it says little; the running mean
m_i over iterations 0..i does: the mean over iterations (a, b] is
(m_b (b + 1) - m_a (a + 1)) / (b - a). With 4 printed decimals, bins of a few hundred
iterations keep the error below ~0.001. Reuses the doctor's patterns and chunked reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from tbx_doctor.reading import patterns as P
from tbx_doctor.reading.logscan import LOSS_WINDOW  # bytes that hold the index and total loss
from tbx_doctor.reading.stream import ReadStatus, iter_chunks


@dataclass(frozen=True)
class LossBin:
    """Mean loss over iterations (start, end] of `epoch` (x = epoch + end / iterations)."""

    epoch: int
    start: int
    end: int
    iterations: int
    loss: float

    @property
    def x(self) -> float:
        return self.epoch + (self.start + self.end + 1) / 2 / self.iterations


def running_means(path: Path) -> dict[int, tuple[int, list[tuple[int, float]]]]:
    """epoch -> (iterations per epoch, [(iteration index, running mean loss), ...])."""
    found: dict[int, tuple[int, list[tuple[int, float]]]] = {}
    for buf, pos, end in iter_chunks(path, ReadStatus(path)):
        at = buf.find(P.ITERATION_PREFIX, pos, end)
        while at >= 0:
            if at == pos or buf[at - 1 : at] == b"\n":
                _add(found, buf, at, min(end, at + LOSS_WINDOW))
            at = buf.find(P.ITERATION_PREFIX, at + 1, end)
    return found


def _add(found: dict, buf: bytes, at: int, stop: int) -> None:
    match = P.ITERATION.match(buf, at, stop)
    loss = P.RUNNING_LOSS.search(buf, at, stop)
    if match is None or loss is None:
        return
    try:
        mean = float(loss.group(2))
    except ValueError:
        return
    epoch, index, total = (int(g) for g in match.groups())
    points = found.setdefault(epoch, (total, []))[1]
    if points and index <= points[-1][0]:
        points.clear()  # the epoch started again (a resume re-ran it): keep the last run
    points.append((index, mean))


def _edges(points: list[tuple[int, float]], width: int) -> list[tuple[int, float]]:
    """Bin edges: a printed line every >= `width` iterations; the epoch's last line closes the
    last bin (merged into the previous one when less than half a bin remains)."""
    # From iteration 0 the running mean starts at the first line; a later first line
    # (a mid-epoch resume) starts its own mean there.
    edges = [(-1, 0.0) if points[0][0] == 0 else points[0]]
    for index, mean in points:
        if index - edges[-1][0] >= width:
            edges.append((index, mean))
    last = points[-1]
    if last[0] > edges[-1][0]:
        if len(edges) > 1 and last[0] - edges[-1][0] < width / 2:
            edges[-1] = last
        else:
            edges.append(last)
    return edges


def loss_bins(path: Path, bins_per_epoch: int = 20) -> list[LossBin]:
    """Mean loss per bin of ~iterations/bins_per_epoch iterations, epoch by epoch."""
    out: list[LossBin] = []
    for epoch, (total, points) in sorted(running_means(path).items()):
        if not points:
            continue
        edges = _edges(points, max(1, total // bins_per_epoch))
        for (a, mean_a), (b, mean_b) in pairwise(edges):
            loss = (mean_b * (b + 1) - mean_a * (a + 1)) / (b - a)
            out.append(LossBin(epoch, a, b, total, max(loss, 0.0)))
    return out
