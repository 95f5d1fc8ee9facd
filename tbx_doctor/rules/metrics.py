"""Training-quality findings: non-finite loss, exploding loss, abnormal first epoch."""

from __future__ import annotations

from tbx_doctor.facts.job import JobFacts
from tbx_doctor.findings import Finding, finding
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.rules.describe import minutes, where


def check_nonfinite(facts: JobFacts, profile: Profile) -> list[Finding]:
    """NaN/inf in a loss field or 'Loss is nan', or the box assertion NaN boxes trigger."""
    lines = facts.signal("nonfinite") + facts.signal("box_assert") + facts.nonfinite_records
    if not lines:
        return []
    first = min(lines, key=lambda e: (e.file, e.line))
    count = facts.counts.get("nonfinite", 0) + facts.counts.get("box_assert", 0)
    count += len(facts.nonfinite_records)
    return [
        finding(
            "nan-loss",
            "The loss became NaN/inf",
            [first, *lines[-1:]],
            f"First non-finite value at {where(first)} ({count} line(s) in all). A NaN loss makes "
            "every later update NaN; the generalized-IoU assertion on boxes fails once predicted "
            "boxes are NaN.",
            "Lower the learning rate, keep gradient clipping (clip_max_norm 0.1), disable AMP to "
            "test, and resume from the last checkpoint before the NaN.",
        )
    ]


def _loss_jump(facts: JobFacts, profile: Profile) -> list[Finding]:
    """Other trainers' progress lines: a total loss above factor x the lowest one before it."""
    trend = facts.loss_trend
    if trend is None or trend.ratio <= profile.loss_explosion_factor:
        return []
    return [
        finding(
            "loss-explosion",
            "The loss exploded",
            [trend.base_line, trend.peak_line],
            f"The total loss rose to {trend.peak:g} at {where(trend.peak_line)}, {trend.ratio:.3g} "
            f"x the lowest value before it ({trend.base:g} at {where(trend.base_line)}); the "
            f"profile flags more than {profile.loss_explosion_factor:g} x.",
            "Lower the learning rate (or add warm-up / gradient clipping) and check for bad "
            "samples; resume from a checkpoint before the jump.",
        )
    ]


def check_loss_explosion(facts: JobFacts, profile: Profile) -> list[Finding]:
    """An epoch's sampled running loss above factor x the previous epoch's mean (DINO), or a
    progress line's total loss above factor x the lowest before it (other trainers)."""
    if not facts.trained_epochs:
        return _loss_jump(facts, profile)
    found: list[Finding] = []
    previous = None
    for epoch in facts.trained_epochs:
        peak = epoch.loss_peak
        if previous is not None and previous.loss_mean and peak is not None:
            limit = profile.loss_explosion_factor * previous.loss_mean
            if peak > limit:
                found.append(
                    finding(
                        "loss-explosion",
                        f"Loss exploded in epoch {epoch.epoch}",
                        [previous.last, epoch.peak],
                        f"Running mean loss reached {peak:g} at {where(epoch.peak)}, above "
                        f"{profile.loss_explosion_factor:g} x epoch {previous.epoch}'s mean "
                        f"{previous.loss_mean:g} "
                        f"({where(previous.last)}).",
                        "Lower the learning rate or check for bad samples; resume from the "
                        "checkpoint "
                        "before the jump.",
                    )
                )
                break
        previous = epoch
    return found


def check_first_epoch(facts: JobFacts, profile: Profile) -> list[Finding]:
    """Epoch 0's mean loss and AP against the profile (the write-up's 2.0-2.5 and 2-4%)."""
    epoch0 = next((e for e in facts.trained_epochs if e.epoch == 0 and e.finished), None)
    if epoch0 is None:
        return []
    found = []
    lo, hi = profile.first_epoch_loss
    tol = profile.loss_tolerance
    if epoch0.loss_mean is not None and not lo - tol <= epoch0.loss_mean <= hi + tol:
        found.append(
            finding(
                "loss-abnormal-first-epoch",
                f"Epoch 0 mean loss {epoch0.loss_mean:g} is outside {lo:g}-{hi:g}",
                [epoch0.last],
                f"Mean loss over epoch 0 is {epoch0.loss_mean:g} ({where(epoch0.last)}); the "
                f"profile ({profile.origin}) expects {lo:g}-{hi:g} (flagged outside "
                f"{lo - tol:g}-{hi + tol:g}).",
                "Check the pretrained weights loaded, num_classes, and the learning rate / "
                "effective batch.",
            )
        )
    ap_lo = profile.first_epoch_ap[0]
    if epoch0.ap is not None and epoch0.ap < ap_lo:
        found.append(
            finding(
                "low-first-epoch-ap",
                f"AP after epoch 0 is {epoch0.ap * 100:.2f}%",
                [epoch0.ap_line],
                f"AP@[.5:.95] after epoch 0 is {epoch0.ap:g} ({where(epoch0.ap_line)}); the "
                "profile expects at "
                f"least {ap_lo:g} ({ap_lo * 100:g}%). Epoch 0 took {minutes(epoch0.seconds)}.",
                "Check that pretrained weights were used (not random init) and the annotations' "
                "category ids.",
            )
        )
    return found
