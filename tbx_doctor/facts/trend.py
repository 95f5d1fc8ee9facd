"""Trends of a per-epoch series and the learning events they show (pure functions).

A series is [(epoch, value)] of finished epochs in order. Its trend is the trailing median of
the last `window` values: a single noisy epoch (a small validation set's AP jumps) never moves
it, and it uses only epochs already seen, so a live job gets the same answer `check` gives
later. An event is reported when its condition holds for `persist` consecutive epochs and
still holds at the last epoch; `visible` is the first epoch of that stretch, `confirmed` the
epoch at which it had lasted `persist` epochs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tbx_doctor.profile.learning_defaults import LearningThresholds

Series = list[tuple[int, float]]


@dataclass(frozen=True)
class Event:
    """A condition that held from `visible` (confirmed at `confirmed`) to the last epoch."""

    visible: int
    confirmed: int
    last: int
    reference_epoch: int | None = None  # the epoch compared against (best AP, lowest loss)
    reference_value: float | None = None
    value: float | None = None  # the trend at `confirmed`
    worst: float | None = None  # the most extreme trend value since `visible`


def median(values: Iterable[float]) -> float:
    """statistics.median without importing statistics (random, fractions, decimal) at start-up."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def trend(series: Series, window: int) -> Series:
    values = [v for _, v in series]
    return [
        (epoch, median(values[max(0, i - window + 1) : i + 1]))
        for i, (epoch, _) in enumerate(series)
    ]


def sustained(flags: list[bool], persist: int) -> tuple[int, int] | None:
    """(start, confirm) indexes of the final run of True that is >= persist long."""
    if not flags or not flags[-1]:
        return None
    start = len(flags) - 1
    while start > 0 and flags[start - 1]:
        start -= 1
    if len(flags) - start < persist:
        return None
    return start, start + persist - 1


def collapse(ap: Series, t: LearningThresholds) -> Event | None:
    """AP trend fell below collapse_ratio x its own best trend and stayed there."""
    smooth = trend(ap, int(t.window))
    best, best_epoch, bests, flags = 0.0, None, [], []
    for epoch, value in smooth:
        if value > best:
            best, best_epoch = value, epoch
        bests.append((best_epoch, best))
        flags.append(best >= t.collapse_min_best and value < t.collapse_ratio * best)
    found = sustained(flags, int(t.persist))
    if found is None:
        return None
    start, confirm = found
    ref_epoch, ref_value = bests[confirm]
    return Event(
        smooth[start][0], smooth[confirm][0], smooth[-1][0], ref_epoch, ref_value,
        smooth[confirm][1], min(v for _, v in smooth[start:]),
    )  # fmt: skip


def ap_near_zero(ap: Series, t: LearningThresholds) -> Event | None:
    """AP trend below ap_floor from epoch min_epochs on."""
    smooth = [(e, v) for e, v in trend(ap, int(t.window)) if e >= t.min_epochs]
    found = sustained([v < t.ap_floor for _, v in smooth], int(t.persist))
    if found is None:
        return None
    start, confirm = found
    best = max(v for _, v in smooth[: confirm + 1])
    return Event(
        smooth[start][0], smooth[confirm][0], smooth[-1][0], None, best,
        smooth[confirm][1], max(v for _, v in smooth[start:]),
    )  # fmt: skip


def loss_flat(loss: Series, t: LearningThresholds) -> Event | None:
    """The loss trend never fell loss_min_drop below epoch 0's loss by epoch min_epochs."""
    if not loss or loss[0][0] != 0:
        return None
    start_value = loss[0][1]
    smooth = trend(loss, int(t.window))
    lowest, flags = start_value, []
    for epoch, value in smooth:
        lowest = min(lowest, value)
        flags.append(epoch >= t.min_epochs and lowest > (1 - t.loss_min_drop) * start_value)
    found = sustained(flags, int(t.persist))
    if found is None:
        return None
    start, confirm = found
    return Event(
        smooth[start][0], smooth[confirm][0], smooth[-1][0], 0, start_value, smooth[confirm][1],
        lowest,
    )  # fmt: skip


def loss_rising(loss: Series, t: LearningThresholds) -> Event | None:
    """Loss trend above loss_rise x its running minimum, and still there."""
    smooth = trend(loss, int(t.window))
    low, low_epoch, lows, flags = float("inf"), None, [], []
    for epoch, value in smooth:
        if value < low:
            low, low_epoch = value, epoch
        lows.append((low_epoch, low))
        flags.append(value > t.loss_rise * low)
    found = sustained(flags, int(t.persist))
    if found is None:
        return None
    start, confirm = found
    return Event(
        smooth[start][0], smooth[confirm][0], smooth[-1][0], *lows[confirm],
        smooth[confirm][1], max(v for _, v in smooth[start:]),
    )  # fmt: skip


def ap_falling_at(ap: Series, epoch: int, t: LearningThresholds) -> bool:
    """At `epoch` the AP trend is near zero or below half its best so far (or AP is unknown)."""
    smooth = [(e, v) for e, v in trend(ap, int(t.window)) if e <= epoch]
    if not smooth:
        return True
    best = max(v for _, v in smooth)
    return smooth[-1][1] < t.ap_floor or smooth[-1][1] < 0.5 * best


@dataclass(frozen=True)
class Regression:
    """AP (or loss) around a resume: medians of up to `window` epochs before and after."""

    boundary: int
    before: float
    after: float
    before_epochs: tuple[int, ...]
    after_epochs: tuple[int, ...]


def resume_regression(series: Series, boundary: int, t: LearningThresholds, higher_is_better: bool):
    """The median after a resume far worse than before it (None when too few epochs after)."""
    window = int(t.window)
    before = [(e, v) for e, v in series if e < boundary][-window:]
    after = [(e, v) for e, v in series if e >= boundary][:window]
    if not before or len(after) < t.persist:
        return None
    b = median(v for _, v in before)
    a = median(v for _, v in after)
    if higher_is_better:
        bad = b >= t.collapse_min_best and a < t.regression_ratio * b
    else:
        bad = a > t.loss_rise * b
    if not bad:
        return None
    return Regression(boundary, b, a, tuple(e for e, _ in before), tuple(e for e, _ in after))
