"""Learn a profile (the expectations `check --profile` reads) from healthy runs.

From the rows of `history.build_history`, keep training jobs that did not fail (verdict not
`failed`, not zero epochs, not crashed) and derive, each as the observed min..max widened by a
margin (default 25 %): epoch 0's mean loss, the minutes one epoch takes, AP@[.5:.95] after
epoch 0; and iterations per epoch as the exact observed min..max (no margin: it changes only
with the data or the batch size x GPUs, and such a change is what it is there to catch).
The TOML uses `expectations.py`'s schema, so `load_profile` reads it back unchanged.
A chain whose trajectory has a learning finding (AP collapsed, not learning, loss diverging:
`history.curves`) is no reference and is left out, with a comment saying so. From the rest,
`[bands]` holds the per-epoch band of loss and AP (`profile.bands`) that `check --profile`
and `--reference` compare a run with.
"""

from __future__ import annotations

from dataclasses import dataclass

from tbx_doctor.errors import DoctorError
from tbx_doctor.facts.trajectory import Sample, Trajectory
from tbx_doctor.history.rows import JobRow
from tbx_doctor.profile.bands import Bands, bands_from, render_bands
from tbx_doctor.profile.learning_defaults import LearningThresholds

UNHEALTHY_ENDINGS = ("zero epochs", "crashed")


class NothingToLearn(DoctorError):
    """No healthy training run among the inputs."""


@dataclass(frozen=True)
class Observed:
    """Values seen for one expectation, and where they came from (for the TOML comment)."""

    values: tuple[float, ...]
    origin: str


def healthy(rows: list[JobRow]) -> list[JobRow]:
    return [
        r
        for r in rows
        if r.kind == "train" and r.verdict != "failed" and r.ending not in UNHEALTHY_ENDINGS
    ]


def not_learning_jobs(rows: list[JobRow]) -> dict[str, str]:
    """job -> the learning finding of its chain (warning or error), for jobs to leave out."""
    from tbx_doctor.history.chain import build_chains
    from tbx_doctor.history.curves import chain_curves
    from tbx_doctor.profile.expectations import Profile

    chains = build_chains(rows).chains
    bad = {}
    for curve in chain_curves(chains, rows, Profile()):
        problems = [f["code"] for f in curve.findings if f["severity"] in ("warning", "error")]
        bad.update({job: ", ".join(problems) for job in curve.jobs if problems})
    return bad


def learned_bands(rows: list[JobRow]) -> Bands | None:
    """Bands around the merged finished epochs of the healthy rows (later jobs win)."""
    samples: dict[int, Sample] = {}
    for row in rows:
        for p in row.epochs:
            if p.finished and (p.loss is not None or p.ap is not None):
                samples[p.epoch] = Sample(p.epoch, p.loss, p.ap, None)
    if not samples:
        return None
    jobs = ", ".join(r.job_id or "?" for r in rows)
    trajectory = Trajectory(tuple(samples[e] for e in sorted(samples)))
    return bands_from(trajectory, LearningThresholds(), f"jobs {jobs}")


def observe(rows: list[JobRow]) -> dict[str, Observed]:
    """The raw observations: epoch-0 loss and AP per job, minutes of every finished epoch."""
    zero = [(r, p) for r in rows for p in r.epochs if p.epoch == 0 and p.finished]
    timed = [(r, p) for r in rows for p in r.epochs if p.finished and p.seconds]
    found = {
        "loss": Observed(
            tuple(p.loss for _, p in zero if p.loss is not None),
            ", ".join(f"job {r.job_id}" for r, p in zero if p.loss is not None),
        ),
        "ap": Observed(
            tuple(p.ap for _, p in zero if p.ap is not None),
            ", ".join(f"job {r.job_id}" for r, p in zero if p.ap is not None),
        ),
        "minutes": Observed(
            tuple(p.seconds / 60 for _, p in timed),
            f"{len(timed)} epochs of {len({r.job_id for r, _ in timed})} jobs",
        ),
    }
    return {key: obs for key, obs in found.items() if obs.values}


def _range(values: tuple[float, ...], margin: float, digits: int) -> list[float]:
    low, high = min(values), max(values)
    return [round(low * (1 - margin), digits), round(high * (1 + margin), digits)]


def _seen(obs: Observed, fmt: str) -> str:
    return f"observed {format(min(obs.values), fmt)}..{format(max(obs.values), fmt)} ({obs.origin})"


def render_profile(rows: list[JobRow], margin: float = 0.25) -> str:
    """TOML text for `check --profile`; raises NothingToLearn without a healthy run."""
    bad = not_learning_jobs(rows)
    good = [r for r in healthy(rows) if (r.job_id or "?") not in bad]
    if not good:
        raise NothingToLearn(
            "no healthy training run among the inputs (all failed, crashed, trained zero "
            "epochs, or were evaluation-only): pass logs of runs that trained normally"
        )
    seen = observe(good)
    lines = [
        f"# tbx-doctor profile learned from {len(good)} training job(s): "
        + ", ".join(r.job_id or "?" for r in good),
        *(f"# left out: job {job} (its chain: {codes})" for job, codes in bad.items()),
        f"# Each range is the observed min..max widened by {margin:.0%}.",
        "[first_epoch]",
    ]
    specs = (("loss", 3, ".3f", "epoch 0 mean loss"), ("minutes", 1, ".1f", "minutes per epoch"))
    specs += (("ap", 4, ".4f", "AP@[.5:.95] after epoch 0"),)
    for key, digits, fmt, what in specs:
        if key in seen:
            bounds = _range(seen[key].values, margin, digits)
            lines.append(f"{key} = {bounds}  # {what}: {_seen(seen[key], fmt)}")
        else:
            lines.append(f"# {key}: no {what} in these runs (built-in default kept)")
    if "loss" in seen:
        lines.append("loss_tolerance = 0.0  # the loss range above already holds the margin")
    bands = learned_bands(good)
    tail = render_bands(bands) if bands else ["# no per-epoch loss or AP: no [bands]"]
    return "\n".join(lines + _job_table(good) + tail) + "\n"


def _job_table(good: list[JobRow]) -> list[str]:
    """[job] iterations_per_epoch: the exact observed range (TOML ints)."""
    iterations = sorted({r.iterations_per_epoch for r in good if r.iterations_per_epoch})
    if not iterations:
        return ["# iterations_per_epoch: none printed by these runs (no expectation set)"]
    seen = ", ".join(map(str, iterations))
    return [
        "[job]",
        f"iterations_per_epoch = [{iterations[0]}, {iterations[-1]}]  # observed {seen} "
        "(exact: a change means other data or another batch size x GPUs)",
    ]
