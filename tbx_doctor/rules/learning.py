"""Learning-quality findings from the run's per-epoch loss and AP (`facts.trajectory`).

All judge trends (`facts.trend`: the median of the last epochs), never one epoch, and say
from which epoch the problem was visible and at which it was confirmed, quoting the numbers
and the lines they come from. Thresholds: `profile.learning` (defaults and their sources:
`tbx-doctor codes --explain`). A running job is told so: every further epoch is spent on it.
"""

from __future__ import annotations

from tbx_doctor.facts import trend as T
from tbx_doctor.facts.job import JobFacts
from tbx_doctor.facts.trajectory import Trajectory, trajectory_of
from tbx_doctor.findings import Finding, finding
from tbx_doctor.profile.bands import band_exit
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.profile.learning_defaults import LearningThresholds


def pct(value: float | None) -> str:
    return "?" if value is None else f"{value * 100:.2f}%"


def _span(traj: Trajectory, field: str, first: int, last: int) -> str:
    values = [v for e, v in traj.series(field) if first <= e <= last]
    if not values:
        return "no values"
    fmt = pct if field == "ap" else (lambda v: f"{v:.3f}")
    return f"{fmt(min(values))}-{fmt(max(values))}"


def _running(traj: Trajectory, visible: int, job: str) -> tuple[str, str]:
    """Explanation and fix prefixes for a job that is still being written."""
    if not traj.running:
        return "", ""
    return (
        f" The job is still running: this was visible from epoch {visible}; every further "
        "epoch is spent on a run that is not learning.",
        f"Cancel {job} now (scancel) rather than let it run on. ",
    )


def _lines(traj: Trajectory, *epochs: int | None) -> list:
    return [traj.line_of(e) for e in epochs if e is not None]


def _collapse(traj: Trajectory, t: LearningThresholds, job: str) -> Finding | None:
    ev = T.collapse(traj.series("ap"), t)
    if ev is None:
        return None
    raw_best = max(traj.series("ap"), key=lambda p: p[1])
    note, fix = _running(traj, ev.visible, job)
    return finding(
        "ap-collapsed",
        f"AP collapsed from epoch {ev.visible}: trend {pct(ev.value)} against a best of "
        f"{pct(ev.reference_value)}",
        _lines(traj, raw_best[0], ev.reference_epoch, ev.visible, ev.last),
        f"AP@[.5:.95] (trend: median of the last {t.window:g} epochs) peaked at "
        f"{pct(ev.reference_value)} at epoch {ev.reference_epoch} (best single epoch "
        f"{pct(raw_best[1])} at epoch {raw_best[0]}). It fell below {t.collapse_ratio:g} x that "
        f"at epoch {ev.visible}, was confirmed at epoch {ev.confirmed} (trend {pct(ev.value)}) "
        f"and has stayed there to epoch {ev.last}: epochs {ev.visible}-{ev.last} scored "
        f"{_span(traj, 'ap', ev.visible, ev.last)} "
        f"(loss {_span(traj, 'loss', ev.visible, ev.last)})." + note,
        fix + f"Do not spend more epochs: restart from the checkpoint of epoch "
        f"{ev.reference_epoch} or earlier if one is kept, with a lower learning rate or the "
        "settings of a run that learned (compare config_args_all.json: lr, batch x GPUs).",
    )


def _loss_over(traj: Trajectory, t: LearningThresholds, first: int, last: int) -> str:
    """How the loss trend moved over epochs first..last (flat, falling or rising)."""
    smooth = [(e, v) for e, v in T.trend(traj.series("loss"), int(t.window)) if first <= e <= last]
    if len(smooth) < 2:
        return ""
    change = smooth[-1][1] / smooth[0][1] - 1
    shape = "flat" if abs(change) < t.loss_min_drop else ("falling" if change < 0 else "rising")
    return (
        f" Loss trend over the same epochs: {smooth[0][1]:.3f} -> {smooth[-1][1]:.3f} "
        f"({change:+.0%}, {shape})."
    )


def _not_learning(traj: Trajectory, t: LearningThresholds, job: str) -> Finding | None:
    near_zero = T.ap_near_zero(traj.series("ap"), t)
    flat = T.loss_flat(traj.series("loss"), t)
    ev = near_zero or flat
    if ev is None:
        return None
    if near_zero is not None:
        what = (
            f"AP@[.5:.95] trend stayed below {pct(t.ap_floor)} from epoch {ev.visible} "
            f"(judged from epoch {t.min_epochs:g}) to epoch {ev.last}; the highest trend up to "
            f"epoch {ev.confirmed} was {pct(ev.reference_value)}, raw AP over epochs "
            f"{ev.visible}-{ev.last} {_span(traj, 'ap', ev.visible, ev.last)}."
        )
    else:
        what = (
            f"The loss trend never fell {t.loss_min_drop:.0%} below epoch 0's "
            f"{ev.reference_value:.3f}: its lowest by epoch {ev.last} is {ev.worst:.3f}."
        )
    if near_zero is not None and flat is not None:
        what += f" The loss has not fallen either (lowest trend {flat.worst:.3f})."
    elif near_zero is not None:
        what += _loss_over(traj, t, ev.visible, ev.last)
    note, fix = _running(traj, ev.visible, job)
    return finding(
        "not-learning",
        f"Not learning: visible from epoch {ev.visible}, confirmed at epoch {ev.confirmed}",
        _lines(traj, 0 if flat and not near_zero else None, ev.visible, ev.last),
        what + note,
        fix + "Check that pretrained weights loaded, num_classes and the annotations' category "
        "ids, and the learning rate for the effective batch; compare with a run that learned "
        "(`--reference`).",
    )


def _diverging(traj: Trajectory, t: LearningThresholds, job: str) -> Finding | None:
    ev = T.loss_rising(traj.series("loss"), t)
    if ev is None or not T.ap_falling_at(traj.series("ap"), ev.confirmed, t):
        return None
    note, fix = _running(traj, ev.visible, job)
    return finding(
        "loss-diverging",
        f"Loss rising from epoch {ev.visible}: trend {ev.value:.3f} against a low of "
        f"{ev.reference_value:.3f}",
        _lines(traj, ev.reference_epoch, ev.visible, ev.last),
        f"The mean training loss (trend over {t.window:g} epochs) was lowest at "
        f"{ev.reference_value:.3f} (epoch {ev.reference_epoch}), rose above "
        f"{t.loss_rise:g} x that at epoch {ev.visible}, was confirmed at epoch {ev.confirmed} "
        f"({ev.value:.3f}) and is still there at epoch {ev.last} (highest {ev.worst:.3f}); "
        f"meanwhile AP fell or stayed near zero (epochs {ev.visible}-{ev.last}: "
        f"{_span(traj, 'ap', ev.visible, ev.last)})." + note,
        fix + "Lower the learning rate (or restore the effective batch it was tuned for) and "
        f"resume from a checkpoint from before epoch {ev.visible}.",
    )


def _regression(traj: Trajectory, t: LearningThresholds) -> Finding | None:
    for boundary in traj.resumes:
        for field, better in (("ap", True), ("loss", False)):
            found = T.resume_regression(traj.series(field), boundary, t, better)
            if found is None:
                continue
            fmt = pct if better else (lambda v: f"{v:.3f}")
            return finding(
                "resume-regression",
                f"{'AP' if better else 'Loss'} after the resume at epoch {boundary} is "
                f"{fmt(found.after)} against {fmt(found.before)} before",
                _lines(traj, found.before_epochs[-1], *found.after_epochs[-1:]),
                f"Median {field} of epochs {found.before_epochs[0]}-{found.before_epochs[-1]} "
                f"(before the resume): {fmt(found.before)}; of epochs {found.after_epochs[0]}-"
                f"{found.after_epochs[-1]} (after it): {fmt(found.after)}. A resume that "
                "restores model, optimizer and scheduler continues where the run was.",
                "Check what the resume restored (tbx-doctor inspect-ckpt: optimizer and "
                "lr_scheduler state, EMA) and that the effective batch and learning rate "
                "are those of the run before it.",
            )
    return None


def _off_reference(traj: Trajectory, profile: Profile) -> Finding | None:
    bands, t = profile.bands, profile.learning
    if bands is None:
        return None
    exits = [band_exit(traj.series(k), bands, m, t) for k, m in (("ap", "AP"), ("loss", "loss"))]
    exits = [x for x in exits if x is not None]
    if not exits:
        return None
    first = min(exits, key=lambda x: x.event.confirmed)
    texts = []
    for x in exits:
        side = "below its low" if x.metric == "AP" else "above its high"
        fmt = pct if x.metric == "AP" else (lambda v: f"{v:.3f}")
        texts.append(
            f"{x.metric} trend left the band {side} edge at epoch {x.first_out} and has been "
            f"outside since epoch {x.event.visible} (confirmed at epoch {x.event.confirmed}: "
            f"{fmt(x.value_at_confirm)} against {fmt(x.bound_at_confirm)}); worst at epoch "
            f"{x.worst_epoch}, {x.worst_ratio:.2f} x the edge; outside at {x.epochs_out} of "
            f"{x.epochs_compared} epochs compared."
        )
    note, fix = _running(traj, first.event.visible, "the job")
    metrics = ", ".join(x.metric for x in exits)
    return finding(
        "off-reference",
        f"Off the reference from epoch {first.event.visible} ({metrics})",
        _lines(traj, first.first_out, first.event.confirmed, first.event.last),
        " ".join(texts) + f" Reference: {bands.origin} (epochs {min(bands.by_epoch)}-"
        f"{bands.last_epoch})." + note,
        fix + "Compare this run's settings with the reference's (config_args_all.json: lr, "
        "batch x GPUs, pretrained weights, data).",
    )


def check_learning(facts: JobFacts, profile: Profile) -> list[Finding]:
    """Collapse (or else not-learning), diverging loss, resume regression, reference band."""
    job = f"job {facts.job_id}" if facts.job_id else "the job"
    return learning_findings(trajectory_of(facts), profile, job)


def learning_findings(traj: Trajectory, profile: Profile, job: str) -> list[Finding]:
    """The learning findings of any trajectory (one job's, or a whole chain's in history)."""
    if not traj.samples:
        return []
    t = profile.learning
    found = [_collapse(traj, t, job)]
    if found[0] is None:
        found = [_not_learning(traj, t, job)]
    found += [_diverging(traj, t, job), _regression(traj, t), _off_reference(traj, profile)]
    return [f for f in found if f is not None]


def learning_marks(traj: Trajectory, profile: Profile) -> list[tuple[str, int, int]]:
    """(code, visible epoch, confirmed epoch) of each learning event, for plots and tables."""
    t, ap, loss = profile.learning, traj.series("ap"), traj.series("loss")
    marks = []
    collapsed = T.collapse(ap, t)
    stalled = None if collapsed else (T.ap_near_zero(ap, t) or T.loss_flat(loss, t))
    for code, ev in (("ap-collapsed", collapsed), ("not-learning", stalled)):
        if ev is not None:
            marks.append((code, ev.visible, ev.confirmed))
    rising = T.loss_rising(loss, t)
    if rising is not None and T.ap_falling_at(ap, rising.confirmed, t):
        marks.append(("loss-diverging", rising.visible, rising.confirmed))
    if profile.bands is not None:
        for series, metric in ((ap, "AP"), (loss, "loss")):
            left = band_exit(series, profile.bands, metric, t)
            if left is not None:
                marks.append(
                    (f"off-reference ({metric})", left.event.visible, left.event.confirmed)
                )
    return sorted(marks, key=lambda m: m[2])


def earliest_call(traj: Trajectory, profile: Profile) -> tuple[int, Finding] | None:
    """The first epoch at which the doctor, seeing only the epochs up to it (as `watch` does),
    raises a learning warning or error, and that finding."""
    for n in range(1, len(traj.samples) + 1):
        last = traj.samples[n - 1].epoch
        seen = Trajectory(traj.samples[:n], tuple(r for r in traj.resumes if r <= last))
        serious = [f for f in learning_findings(seen, profile, "the job") if f.severity != "info"]
        if serious:
            return last, serious[0]
    return None
