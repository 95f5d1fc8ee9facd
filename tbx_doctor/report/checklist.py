"""The verification checklist (after the incident write-up's), computed from facts.

Each item is pass, fail, pending (the log is still growing and has not reached it) or unknown
(the files do not say), with the evidence it was decided on.
"""

from __future__ import annotations

from dataclasses import dataclass

from tbx_doctor.facts.job import JobFacts
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.rules.describe import minutes, where
from tbx_doctor.rules.requeue import find_requeue


@dataclass(frozen=True)
class Item:
    item: str
    status: str
    evidence: str


def _open(facts: JobFacts) -> str:
    return "pending" if facts.still_growing else "unknown"


def _path_item(facts: JobFacts, profile: Profile) -> Item:
    d = facts.decision
    if profile.expect == "any":
        label = "The run states its path (pretrained / resume / scratch)"
        if d is None:
            return Item(label, _open(facts), "no decision line found")
        return Item(label, "pass", f"{d.mode} at {where(d.line)}")
    label = f"The run's path is `{profile.expect}`"
    if d is None:
        return Item(label, _open(facts), "no decision line found")
    ok = d.mode == profile.expect or (profile.expect == "fresh" and d.mode == "pretrained")
    return Item(label, "pass" if ok else "fail", f"{d.mode} at {where(d.line)}")


def _start_item(facts: JobFacts) -> Item:
    label = "Training starts (an iteration line appears)"
    if facts.eval_only:
        return Item(label, "pass", f"evaluation-only job ({where(facts.eval_only)})")
    first = facts.trained_epochs[0].first if facts.trained_epochs else None
    if first is None and facts.iterations_only is not None:  # detectron2: no epochs
        first = facts.iterations_only.first
    if first is None and facts.signal("progress"):  # another trainer's progress lines
        first = facts.signal("progress")[0]
    if first is not None:
        return Item(label, "pass", f"{where(first)}: {first.text[:60]}")
    if facts.training == "seen":
        timed = [e.time_line for e in facts.trained_epochs]
        candidates = [*timed, facts.training_time_line, *facts.signal("nonfinite")]
        shown = next((c for c in [*candidates, *facts.nonfinite_records] if c is not None), None)
        if shown is not None:
            return Item(label, "pass", f"{where(shown)}: {shown.text[:60]}")
        return Item(label, "pass", "the run's log.txt records trained epochs")
    if facts.still_growing:
        return Item(label, "pending", "no iteration line yet")
    if facts.training == "unknown":
        return Item(label, "unknown", f"no iteration line; {facts.unseen_why}")
    return Item(label, "fail", "no iteration line")


def _epoch0_items(facts: JobFacts, profile: Profile) -> list[Item]:
    """Loss and AP of epoch 0 against the profile (unknown when this job did not train it)."""
    lo, hi = profile.first_epoch_loss
    tol, ap_lo = profile.loss_tolerance, profile.first_epoch_ap[0]
    loss_label = f"Epoch 0 mean loss about {lo:g}-{hi:g}"
    ap_label = f"AP after epoch 0 at least {ap_lo * 100:g}%"
    epoch0 = next((e for e in facts.trained_epochs if e.epoch == 0), None)
    first = facts.trained_epochs[0] if facts.trained_epochs else None
    if epoch0 is None or not epoch0.finished:
        later = first is not None and first.epoch > 0
        why = "epoch 0 not trained in this job" if later else "epoch 0 not finished"
        if first is None and facts.training == "unknown":
            why = "no epoch line in the files read"
        status = "pending" if facts.still_growing and not later else "unknown"
        return [Item(loss_label, status, why), Item(ap_label, status, why)]
    loss = epoch0.loss_mean
    loss_ok = loss is not None and lo - tol <= loss <= hi + tol
    ap = epoch0.ap
    ap_status = "unknown" if ap is None else ("pass" if ap >= ap_lo else "fail")
    return [
        Item(loss_label, "pass" if loss_ok else "fail", f"{loss} at {where(epoch0.last)}"),
        Item(ap_label, ap_status, f"{ap} at {where(epoch0.ap_line)}"),
    ]


def _epoch_time_item(facts: JobFacts, profile: Profile) -> Item:
    """Duration of the first epoch this job timed (its `Total time` line)."""
    m_lo, m_hi = profile.first_epoch_minutes
    label = f"First epoch takes {m_lo:g}-{m_hi:g} min"
    timed = next((e for e in facts.trained_epochs if e.seconds is not None), None)
    if timed is None:
        return Item(label, _open(facts), "no epoch `Total time` line")
    ok = m_lo * 60 <= timed.seconds <= m_hi * 60
    evidence = f"epoch {timed.epoch}: {minutes(timed.seconds)} ({where(timed.time_line)})"
    return Item(label, "pass" if ok else "fail", evidence)


def _duration_item(facts: JobFacts, profile: Profile) -> Item:
    hours = profile.expected_job_hours
    label = f"No immediate exit: the job runs for hours (>= {hours:g} h) or finishes its plan"
    trained = facts.trained_epochs
    done = (
        facts.epochs_planned is not None
        and trained
        and trained[-1].finished
        and trained[-1].epoch == facts.epochs_planned - 1
    )
    if facts.eval_only or done:
        return Item(
            label,
            "pass",
            "evaluation-only job" if facts.eval_only else "the last planned epoch finished",
        )
    requeue = find_requeue(facts)
    if requeue is not None and trained:
        # A planned stop after training and saving is a link of a job chain, not an early exit.
        return Item(
            label,
            "pass",
            f"stopped on {requeue.signal} after saving a resumable checkpoint at "
            f"{requeue.position} ({where(requeue.line)})",
        )
    if facts.wall_seconds is None:
        return Item(label, _open(facts), "no start/end time lines")
    hours = facts.wall_seconds / 3600
    return Item(
        label,
        "pass" if hours >= profile.expected_job_hours else "fail",
        f"ran {minutes(facts.wall_seconds)}",
    )


def _iterations_item(facts: JobFacts, expected: tuple[float, float]) -> Item:
    """Iterations per epoch (N of `[i/N]`) against the profile: other data or batch x GPUs."""
    lo, hi = expected
    label = f"Iterations per epoch {lo:g}-{hi:g} (same data, same batch size x GPUs)"
    counted = next((e for e in facts.trained_epochs if e.iterations is not None), None)
    if counted is None:
        status = "pass" if facts.eval_only else _open(facts)
        return Item(label, status, "evaluation-only job" if facts.eval_only else "no `[i/N]` line")
    ok = lo <= counted.iterations <= hi
    evidence = f"epoch {counted.epoch}: {counted.iterations} ({where(counted.first)})"
    return Item(label, "pass" if ok else "fail", evidence)


def build_checklist(facts: JobFacts, profile: Profile) -> list[Item]:
    """The six checks of the incident write-up, generalised by the profile (a seventh when
    the profile expects a number of iterations per epoch)."""
    loss_item, ap_item = _epoch0_items(facts, profile)
    items = [
        _path_item(facts, profile),
        _start_item(facts),
        loss_item,
        _epoch_time_item(facts, profile),
        ap_item,
        _duration_item(facts, profile),
    ]
    if profile.iterations_per_epoch is not None:
        items.append(_iterations_item(facts, profile.iterations_per_epoch))
    return items
