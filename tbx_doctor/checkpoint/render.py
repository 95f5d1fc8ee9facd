"""Text, Markdown and JSON views of a checkpoint summary and resume prediction (same data)."""

from __future__ import annotations

import json

from tbx_doctor.checkpoint.resume import ResumePrediction
from tbx_doctor.checkpoint.summary import CheckpointSummary

SCHEMA = "tbx-doctor.inspect-ckpt/1"


def verdict(summary: CheckpointSummary, prediction: ResumePrediction | None) -> str:
    """One word for the outcome; only "problem" and "unsafe" are failures (exit 1 and 2).

    "unsafe": refused; "problem": the planned resume trains nothing or is incompatible;
    "finished": no plan given, and resuming with the recorded plan would train nothing; "ok".
    """
    if not summary.is_safe:
        return "unsafe"
    if prediction is not None and prediction.plan_given and prediction.problems:
        return "problem"
    if prediction is not None and not prediction.plan_given and prediction.trains is False:
        return "finished"
    return "ok"


def render_json(summary: CheckpointSummary, prediction: ResumePrediction | None) -> str:
    data = {
        "schema": SCHEMA,
        "verdict": verdict(summary, prediction),
        "checkpoint": summary.to_dict(),
        "resume": prediction.to_dict() if prediction is not None else None,
    }
    return json.dumps(data, indent=2)


def _or(value: object, missing: str = "not recorded") -> str:
    return missing if value is None else str(value)


def _progress(s: CheckpointSummary) -> str:
    if s.epoch is None:
        return "no epoch recorded"
    done = s.epoch + 1
    planned = f" of {s.epochs_planned} planned" if s.epochs_planned is not None else ""
    text = f"epoch {s.epoch} (0-based, last finished): finished {done}{planned} epochs"
    if s.next_iteration:
        text += f"; saved mid-epoch: epoch {done} continues at micro-batch {s.next_iteration}"
    if s.completed is not None:
        text += "; run completed" if s.completed else "; run not completed"
    return text


def _schedule(s: CheckpointSummary) -> str:
    parts = []
    if s.lr_step_size is not None:
        parts.append(f"StepLR step_size {s.lr_step_size}")
    if s.lr_milestones is not None:
        parts.append(f"milestones {list(s.lr_milestones)}")
    if s.lr_gamma is not None:
        parts.append(f"gamma {s.lr_gamma:g}")
    if s.lr_last_epoch is not None:
        parts.append(f"last_epoch {s.lr_last_epoch}")
    if s.args_lr_drop is not None:
        parts.append(f"args.lr_drop {s.args_lr_drop}")
    lrs = ", ".join(f"{lr:g}" for lr in s.lrs) or "not recorded"
    parts.append(f"current lr per group: {lrs}")
    return "; ".join(parts)


def _strategy(s: CheckpointSummary) -> str:
    if s.batch_size is None and s.world_size is None and s.grad_accum is None:
        return "not recorded"
    text = (
        f"batch_size {_or(s.batch_size)} per device x world_size {_or(s.world_size)} x "
        f"grad_accum {_or(s.grad_accum)}"
    )
    if s.effective_batch is not None:
        assumed = " (accumulation taken as 1)" if s.grad_accum is None else ""
        text += f" = effective batch {s.effective_batch}{assumed}"
    return text


def _steps(s: CheckpointSummary) -> str:
    text = f"optimizer steps {_or(s.optimizer_steps)}"
    if s.global_step is not None:
        text += f", global_step {s.global_step}"
    if s.steps_per_epoch is not None:
        text += f" ({s.steps_per_epoch:g} per finished epoch"
        if s.grad_accum:
            text += f", {s.steps_per_epoch * s.grad_accum:g} micro-batches per epoch per process"
        if s.effective_batch:
            text += f", about {s.steps_per_epoch * s.effective_batch:g} images per epoch"
        text += ")"
    return text


def _model(s: CheckpointSummary) -> str:
    count = f"{s.parameter_count:,}" if s.parameter_count is not None else "unknown"
    trainable = s.trainable_parameter_count
    text = f"{s.model_keys} keys, {count} elements"
    if trainable is not None:
        text += f" ({trainable:,} trainable, from the optimizer moments)"
    return text + (
        f"; classes {_or(s.num_classes, 'unknown')} (args: {_or(s.args_num_classes)}), "
        f"dn label book {_or(s.dn_labelbook_size, 'none')}, queries {_or(s.num_queries)}; "
        f"EMA {'yes' if s.has_ema else 'no'}"
    )


def summary_rows(s: CheckpointSummary) -> list[tuple[str, str]]:
    """(label, text) rows shared by the text and Markdown views."""
    if not s.is_safe:
        names = ", ".join(s.unsafe_globals)
        return [
            ("File", f"{s.path} ({s.file_size:,} bytes)"),
            ("UNSAFE", f"the pickle references {names}; refused, nothing was run or read"),
        ]
    rows = [
        ("File", f"{s.path} ({s.file_size / 1e6:.1f} MB, {s.container}), format {s.format}"),
        ("Progress", _progress(s)),
        ("Schedule", _schedule(s)),
        ("Strategy", _strategy(s)),
        ("Optimizer", _steps(s)),
        ("Model", _model(s)),
        (
            "Provenance",
            f"output_dir {_or(s.output_dir)}; resume {_or(s.resume)}; "
            f"pretrained {_or(s.pretrained)}",
        ),
    ]
    rows += [("Note", note) for note in s.notes]
    return rows


def prediction_rows(p: ResumePrediction) -> list[tuple[str, str]]:
    if p.trains:
        outcome = f"would train epochs {p.first_epoch}..{p.last_epoch}"
    elif p.trains is False:
        outcome = "would train NOTHING"
    else:
        outcome = "cannot tell how many epochs it would train"
    head = "Resume (planned)" if p.plan_given else "Resume (with its recorded plan)"
    return [
        (head, outcome),
        ("Epochs", p.arithmetic),
        (
            "Strategy",
            ("compatible: " if p.strategy_compatible else "")
            + ("INCOMPATIBLE: " if p.strategy_compatible is False else "")
            + p.strategy_explanation,
        ),
        (
            "Classes",
            ("INCOMPATIBLE: " if p.classes_compatible is False else "") + p.classes_explanation,
        ),
    ]


def render_text(summary: CheckpointSummary, prediction: ResumePrediction | None) -> str:
    rows = summary_rows(summary)
    if prediction is not None and summary.is_safe:
        rows += prediction_rows(prediction)
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {text}" for label, text in rows]
    return "\n".join([*lines, f"Verdict: {verdict(summary, prediction)}"])


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(summary: CheckpointSummary, prediction: ResumePrediction | None) -> str:
    rows = summary_rows(summary)
    if prediction is not None and summary.is_safe:
        rows += prediction_rows(prediction)
    lines = [f"## Checkpoint `{summary.path}`", "", "| | |", "|---|---|"]
    lines += [f"| {label} | {_cell(text)} |" for label, text in rows]
    return "\n".join([*lines, "", f"**Verdict: {verdict(summary, prediction)}**"])
