"""Thresholds of the learning-quality findings (`rules.learning`) and where every default of
the doctor's expectations comes from (`tbx-doctor codes --explain`).

The numbers were measured on the two real TBX11K runs in `../shared/real-logs/dino_tbx11k`
(DINO-4scale, pretrained, 50 epochs): run A (jobs 39430799 -> 39487851 -> 39543743) collapsed,
run B (39627174 -> 39685032 -> 39687560 -> 39707249) learned (AP 17-18.5%). "trend" is the
median of the last `window` epochs (a single noisy epoch never moves it). Two runs are little
evidence: each default says how sure it is, and every one can be set in a profile's
`[learning]` table.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class LearningThresholds:
    """Defaults of the trajectory findings (profile table `[learning]`)."""

    window: float = 3.0  # epochs in the trailing median (the trend)
    persist: float = 2.0  # consecutive epochs a condition must hold before it is reported
    collapse_ratio: float = 0.35  # AP trend below this x its own best trend = collapsed
    collapse_min_best: float = 0.01  # a best AP trend below this is noise, not a level to lose
    ap_floor: float = 0.01  # AP trend below this = "near zero"
    min_epochs: float = 5.0  # not-learning is judged from this epoch on
    loss_min_drop: float = 0.05  # loss trend must fall this fraction below epoch 0's by then
    loss_rise: float = 1.15  # loss trend above this x its running minimum = rising
    regression_ratio: float = 0.5  # AP after a resume below this x before it = regression
    band_ap_low: float = 0.5  # reference band: AP below this x the reference's trend
    band_loss_high: float = 1.2  # reference band: loss above this x the reference's trend


@dataclass(frozen=True)
class Provenance:
    source: str
    confidence: str  # high | medium | low, with the reason


PROVENANCE: dict[str, Provenance] = {
    "first_epoch_loss": Provenance(
        "real runs: epoch-0 mean loss 3.18 (run B, learned) and 2.10 (run A, collapsed); the "
        "write-up's 2.0-2.5 warned about the run that learned. It depends on the loss terms and "
        "the share of images with boxes, so the range only catches gross errors",
        "low: two runs, and the value does not separate the good run from the bad one",
    ),
    "loss_tolerance": Provenance(
        "flagged outside the range widened by this (epoch-0 loss 1.0-4.0 with the range above)",
        "low: set wide on purpose",
    ),
    "first_epoch_minutes": Provenance(
        "real runs: 18.7-20.8 min per epoch (6888 iterations per epoch); write-up ~20",
        "medium for this data set and GPU; other hardware needs a profile",
    ),
    "first_epoch_ap": Provenance(
        "real runs: AP after epoch 0 was 5.3% (run B, learned) and 1.1% (run A, collapsed); "
        "the write-up's 2% floor lies between them (only the floor is checked)",
        "low: two runs",
    ),
    "min_job_minutes": Provenance(
        "write-up: the incident job ended in under a minute; real epochs take ~20 min",
        "high: a training job shorter than this with no iteration trained nothing",
    ),
    "expected_job_hours": Provenance(
        "write-up: 'the job runs for hours'; the real jobs ran to their 4 h limits",
        "medium",
    ),
    "loss_explosion_factor": Provenance(
        "DETR-family practice: a running loss 5x the previous epoch's mean is divergence; no "
        "real run here exploded",
        "medium",
    ),
    "window": Provenance(
        "run B's raw AP jumps up to 2x between neighbouring epochs (3.4% -> 7.6% at epochs "
        "1-2; 14.9% -> 10.8%); the median of 3 ignores any single such epoch",
        "medium: the smallest window that ignores one outlier",
    ),
    "persist": Provenance(
        "with the 3-epoch median, 2 epochs below means at least 3 of 4 raw epochs were low",
        "medium",
    ),
    "collapse_ratio": Provenance(
        "run B's AP trend never fell below 0.79x its best so far; run A's fell to 0.21x at "
        "epoch 15 and stayed 0.04-0.30x to epoch 49",
        "low-medium: one collapsed and one healthy run; the gap between them is wide",
    ),
    "collapse_min_best": Provenance(
        "AP below 1% on TBX11K's validation set is a handful of boxes: losing it is noise",
        "medium",
    ),
    "ap_floor": Provenance(
        "run A sat at 0.07-1.1% from epoch 14 on; run B never went below 3.4% (5.3% trend "
        "after epoch 0)",
        "low-medium: two runs",
    ),
    "min_epochs": Provenance(
        "run B was at 6.6% trend by epoch 3; 5 epochs leaves room for a slow start",
        "low: a slower healthy start exists for other data; set it in a profile",
    ),
    "loss_min_drop": Provenance(
        "both real runs' loss fell 26-45% in the first 5 epochs (2.10 -> 1.55, 3.18 -> 1.92)",
        "medium",
    ),
    "loss_rise": Provenance(
        "run B's loss trend never rose above 1.02x its running minimum; run A's reached 1.16x "
        "at epoch 13 and 1.41-1.55x from epoch 15",
        "low: one diverging run; reported only while AP is falling too",
    ),
    "regression_ratio": Provenance(
        "half of the AP before a resume; run B's trend never fell below 0.79x its best, "
        "across its three resumes included",
        "low: no real resume regressed",
    ),
    "band_ap_low": Provenance(
        "run B's raw AP lies within 0.75-1.5x its own 3-epoch trend; half the reference's "
        "trend is outside that noise",
        "low-medium: one reference run",
    ),
    "band_loss_high": Provenance(
        "run B's loss trend never rose above 1.02x its running minimum; a run 1.2x above the "
        "reference's trend is outside anything a same-config run showed",
        "medium",
    ),
}


def threshold_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(LearningThresholds))
