"""Per-epoch reference bands for loss and AP, learned from a healthy run.

A band at epoch e is the reference run's trend there (the median of its last `window` epochs)
widened by `band_ap_low` (AP may fall to that fraction of the reference) and `band_loss_high`
(the loss may rise to that multiple); the other side (AP x 1/band_ap_low, loss x
1/band_loss_high) is written for plots but never alarms: better than the reference is fine.
A reference is a run's log, its output folder, or a profile TOML with a `[bands]` table
(`tbx-doctor profile learn` writes one); `--reference` on check/history/watch loads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tbx_doctor.errors import DoctorError
from tbx_doctor.facts.trajectory import Sample, Trajectory, merge_samples
from tbx_doctor.facts.trend import Event, sustained, trend
from tbx_doctor.profile.learning_defaults import LearningThresholds

if TYPE_CHECKING:
    from tbx_doctor.profile.expectations import Profile

BAND_KEYS = ("epochs", "loss_low", "loss_high", "ap_low", "ap_high")


class ReferenceError(DoctorError):
    """The reference names no readable run, or a profile without bands."""


@dataclass(frozen=True)
class Band:
    loss_low: float | None
    loss_high: float | None
    ap_low: float | None
    ap_high: float | None


@dataclass(frozen=True)
class Bands:
    """epoch -> Band; `origin` names the run or file they were learned from."""

    by_epoch: dict[int, Band]
    origin: str

    @property
    def last_epoch(self) -> int:
        return max(self.by_epoch)


def _scaled(series: list[tuple[int, float]], low: float, high: float) -> dict[int, tuple]:
    return {e: (v * low, v * high) for e, v in series}


def bands_from(trajectory: Trajectory, t: LearningThresholds, origin: str) -> Bands:
    """Bands around the reference trajectory's trends (epochs with loss or AP)."""
    window = int(t.window)
    loss = _scaled(trend(trajectory.series("loss"), window), 1 / t.band_loss_high, t.band_loss_high)
    ap = _scaled(trend(trajectory.series("ap"), window), t.band_ap_low, 1 / t.band_ap_low)
    by_epoch = {
        e: Band(*loss.get(e, (None, None)), *ap.get(e, (None, None)))
        for e in sorted(set(loss) | set(ap))
    }
    return Bands(by_epoch, origin)


def _nums(values: list) -> list[float | None]:
    return [None if v is None or math.isnan(v) else round(v, 4) for v in values]


def render_bands(bands: Bands) -> list[str]:
    """The `[bands]` TOML table (NaN stands for "the reference has no value here")."""
    epochs = sorted(bands.by_epoch)
    rows = {k: [getattr(bands.by_epoch[e], k) for e in epochs] for k in BAND_KEYS[1:]}

    def toml_list(values: list[float | None]) -> str:
        return "[" + ", ".join("nan" if v is None else f"{v:g}" for v in _nums(values)) + "]"

    return [
        "[bands]",
        f"# per-epoch band of {bands.origin}: AP may fall to ap_low, loss rise to loss_high",
        f"epochs = {epochs}",
        *(f"{key} = {toml_list(values)}" for key, values in rows.items()),
    ]


def parse_bands(table: object, origin: str) -> Bands:
    """A `[bands]` table -> Bands; ValueError names what is wrong."""
    if not isinstance(table, dict) or set(table) != set(BAND_KEYS):
        raise ValueError(f"[bands] needs exactly the keys {', '.join(BAND_KEYS)}")
    epochs = table["epochs"]
    if not isinstance(epochs, list) or not all(isinstance(e, int) for e in epochs) or not epochs:
        raise ValueError("[bands] epochs must be a non-empty list of epoch numbers")
    columns = []
    for key in BAND_KEYS[1:]:
        values = table[key]
        ok = isinstance(values, list) and len(values) == len(epochs)
        if not ok or not all(isinstance(v, (int, float)) for v in values):
            raise ValueError(f"[bands] {key} must be {len(epochs)} numbers (nan for none)")
        columns.append([None if math.isnan(v) else float(v) for v in values])
    by_epoch = {e: Band(*(c[i] for c in columns)) for i, e in enumerate(epochs)}
    return Bands(by_epoch, origin)


@dataclass(frozen=True)
class BandExit:
    """The run's trend outside the band: which side, since when, and by how much."""

    metric: str  # "AP" or "loss"
    event: Event
    first_out: int  # the first epoch at all whose trend was outside
    epochs_out: int
    epochs_compared: int
    bound_at_confirm: float
    value_at_confirm: float
    worst_ratio: float  # run trend / bound at the worst epoch (AP < 1, loss > 1)
    worst_epoch: int


def band_exit(series: list[tuple[int, float]], bands: Bands, metric: str, t: LearningThresholds):
    """Where the run's trend leaves the band on the bad side (AP below, loss above)."""
    key = "ap_low" if metric == "AP" else "loss_high"
    pairs = [
        (e, v, getattr(bands.by_epoch[e], key))
        for e, v in trend(series, int(t.window))
        if e in bands.by_epoch and getattr(bands.by_epoch[e], key) is not None
    ]
    if not pairs:
        return None
    flags = [(v < b) if metric == "AP" else (v > b) for _, v, b in pairs]
    found = sustained(flags, int(t.persist))
    if found is None:
        return None
    start, confirm = found
    ratios = [(v / b if b else math.inf, e) for e, v, b in pairs[start:]]
    worst_ratio, worst_epoch = min(ratios) if metric == "AP" else max(ratios)
    e, value, bound = pairs[confirm]
    event = Event(pairs[start][0], e, pairs[-1][0], None, bound, value, None)
    first_out = next(p[0] for p, f in zip(pairs, flags, strict=True) if f)
    return BandExit(
        metric, event, first_out, sum(flags), len(pairs), bound, value, worst_ratio, worst_epoch
    )


def reference_trajectory(path: Path) -> Trajectory:
    """The merged trajectory of every job among a reference's files (log or run folder)."""
    from tbx_doctor.facts.build import build_facts
    from tbx_doctor.facts.trajectory import trajectory_of
    from tbx_doctor.reading.job_files import collect_jobs

    samples: list[dict[int, Sample]] = []
    for job in collect_jobs([path]):
        traj = trajectory_of(build_facts(job, [path]))
        samples.append({s.epoch: s for s in traj.samples})
    return Trajectory(merge_samples(*samples))


def load_reference(path: Path, t: LearningThresholds) -> Bands:
    """Bands from `--reference PATH`: a profile TOML with [bands], a log, or a run folder."""
    if not path.exists():
        raise ReferenceError(f"{path}: reference not found (pass a log, run folder or profile)")
    if path.suffix == ".toml":
        from tbx_doctor.profile.expectations import load_profile

        bands = load_profile(path).bands
        if bands is None:
            raise ReferenceError(
                f"{path}: this profile has no [bands] table: learn one with "
                "`tbx-doctor profile learn LOGS > profile.toml`"
            )
        return bands
    trajectory = reference_trajectory(path)
    if not trajectory.samples:
        raise ReferenceError(
            f"{path}: no per-epoch loss or AP in this reference: pass a run's .out log, its "
            "output folder (log.txt) or a profile learned by `tbx-doctor profile learn`"
        )
    return bands_from(trajectory, t, str(path))


def with_reference(profile: Profile, reference: Path | None) -> Profile:
    """The profile with `--reference`'s bands (a reference replaces the profile's [bands])."""
    from dataclasses import replace

    if reference is None:
        return profile
    return replace(profile, bands=load_reference(reference, profile.learning))
