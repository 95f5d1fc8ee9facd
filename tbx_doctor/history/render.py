"""Render a `History`: text (rich) for people, JSON / CSV for machines, markdown for tickets.

JSON (`tbx-doctor.history/1`): {"schema", "jobs": [row with its "epochs"], "chains": [...],
"problems": [{"kind", "jobs", "text"}], "overall": {...}}. CSV is the pandas table, one row
per job (columns `COLUMNS`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from tbx_doctor.history.chain import Chain, History, row_key
from tbx_doctor.history.curves import learning_lines
from tbx_doctor.history.rows import JobRow
from tbx_doctor.report.sparkline import scale_note, sparkline

if TYPE_CHECKING:
    from rich.console import Console

SCHEMA = "tbx-doctor.history/1"
HEADERS = ("job", "kind", "start", "wall", "ending", "path (source job)", "epochs", "it/epoch")
HEADERS += ("min/epoch", "loss", "AP", "AP50", "EMA AP")
# Text at a narrow terminal: columns left out first (the markdown/CSV/JSON keep them all).
DROP_ORDER = ("kind", "it/epoch", "EMA AP", "AP50", "start", "min/epoch", "wall")
ENDING_MIN = 16  # the ending column wraps down to this width
MIN_EPOCH_NOTE = (
    "min/epoch: training minutes per epoch (the trainer's `Total time`; ? where only log.txt's "
    "epoch_time, which includes evaluation, is known)"
)


def to_dict(history: History) -> dict:
    return {
        "schema": SCHEMA,
        "jobs": [asdict(r) for r in history.rows],
        "chains": [asdict(c) for c in history.chains],
        "problems": [asdict(p) for p in history.problems],
        "overall": history.overall,
        "curves": [c.to_dict() for c in history.curves],
        **({"compared": [c.to_dict() for c in history.compared]} if history.compared else {}),
    }


COLUMNS = (
    "job_id",
    "kind",
    "start",
    "wall_seconds",
    "ending",
    "ending_detail",
    "path",
    "source_job",
    "first_epoch",
    "last_epoch",
    "iterations",
    "seconds_per_epoch",
    "last_loss",
    "last_ap",
    "last_ap50",
    "last_ema_ap",
    "strategy",
    "lost_seconds",
)


INTEGER_COLUMNS = ("first_epoch", "last_epoch", "iterations")


def to_frame(rows: list[JobRow]):
    """rows -> pandas.DataFrame with COLUMNS (pandas imported here: never at start-up)."""
    import pandas as pd

    frame = pd.DataFrame([{c: getattr(r, c) for c in COLUMNS} for r in rows], columns=COLUMNS)
    # Epochs and counts are integers; None must not turn a column into floats (24.0).
    return frame.astype({c: "Int64" for c in INTEGER_COLUMNS})


def render_json(history: History) -> str:
    return json.dumps(to_dict(history), indent=2)


def render_csv(history: History) -> str:
    return to_frame(history.rows).to_csv(index=False)


def _hours(seconds: float | None, estimated: bool = False) -> str:
    if seconds is None:
        return "?"
    minutes = round(seconds / 60)
    return f"{'>=' if estimated else ''}{minutes // 60}:{minutes % 60:02d}"


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _epochs(row: JobRow) -> str:
    """ "0-23", "25-37 (cut)"; "none" only for a job known to have trained nothing, "?" where
    the files that would show the epochs are missing, "-" for an evaluation job."""
    if row.first_epoch is None:
        if row.kind != "train":
            return "-"
        return "none" if row.ending == "zero epochs" else "?"
    last = f"{row.last_epoch}" + ("" if row.last_epoch_finished else " (cut)")
    return f"{row.first_epoch}-{last}" if row.first_epoch != row.last_epoch else last


def _minutes_per_epoch(row: JobRow) -> str:
    """Training minutes per epoch; `?` for a training job whose `Total time` lines are not
    among the files (MIN_EPOCH_NOTE), `-` for an evaluation job."""
    if row.seconds_per_epoch is not None:
        return f"{row.seconds_per_epoch / 60:.1f}"
    return "?" if row.kind == "train" and row.first_epoch is not None else "-"


def cells(row: JobRow) -> tuple[str, ...]:
    """One table row of text cells (shared by the text and markdown renderers)."""
    ending = row.ending + (f" ({row.ending_detail})" if row.ending_detail else "")
    if row.kind == "eval":  # it loads a checkpoint to evaluate it: not a resume
        path = f"evaluates {row.source_job}" if row.source_job else "evaluates"
    else:
        path = (row.path or "?") + (f" ({row.source_job})" if row.source_job else "")
    return (
        row_key(row).rsplit("/", 1)[-1],  # a job without a SLURM id is named by its file
        row.kind,
        (row.start or "?").replace("T", " "),
        _hours(row.wall_seconds, row.wall_estimated),
        ending,
        path,
        _epochs(row),
        _num(row.iterations_per_epoch, "d"),
        _minutes_per_epoch(row),
        _num(row.last_loss, ".3f"),
        _pct(row.last_ap),
        _pct(row.last_ap50),
        _pct(row.last_ema_ap),
    )


def chain_lines(chain: Chain, rows: dict[str, JobRow]) -> list[str]:
    """Summary and sparklines of one chain (plain text, no markup)."""
    reached = "?" if chain.epochs_reached is None else chain.epochs_reached
    planned = "?" if chain.epochs_planned is None else chain.epochs_planned
    lines = [
        " -> ".join(chain.jobs),
        f"  epochs reached {reached} of {planned}; GPU hours {chain.gpu_hours:.1f}; "
        f"hours lost {chain.hours_lost:.2f}",
    ]
    if chain.jobs_without_wall_time:
        lines.append(f"  (no wall time known for {', '.join(chain.jobs_without_wall_time)})")
    members = [rows[j] for j in chain.jobs]
    for label, field, percent in (("loss", "loss", False), ("AP  ", "ap", True)):
        segments = [[getattr(p, field) for p in r.epochs] for r in members]
        lines.append(f"  {label} {sparkline(segments)}  {scale_note(segments, percent)}")
    return lines


def _overall(history: History) -> str:
    o = history.overall
    return (
        f"{o['jobs']} jobs ({o['training_jobs']} training) in {o['chains']} chain(s); "
        f"GPU hours {o['gpu_hours']:.1f}; hours lost {o['hours_lost']:.2f} (zero-epoch jobs, "
        "and epochs cut by a kill before their checkpoint)"
    )


def _fitting_columns(rows: list[tuple[str, ...]], width: int) -> list[int]:
    """Indexes of HEADERS that fit `width` (1 space between columns), dropping DROP_ORDER."""

    def need(i: int) -> int:
        widest = max(len(c) for c in [HEADERS[i], *(r[i] for r in rows)])
        return min(widest, ENDING_MIN) if HEADERS[i] == "ending" else widest

    kept = list(range(len(HEADERS)))
    for name in DROP_ORDER:
        if sum(need(i) + 1 for i in kept) - 1 <= width:
            break
        kept.remove(HEADERS.index(name))
    return kept


def render_text(history: History, console: Console) -> None:
    """The table at the console's width (columns of DROP_ORDER left out when narrow), each
    chain with its sparklines, its learning curve notes, the problems and the totals."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    all_cells = [cells(row) for row in history.rows]
    kept = _fitting_columns(all_cells, console.width)
    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1),
        collapse_padding=True, header_style="bold",
    )  # fmt: skip
    for i in kept:
        table.add_column(HEADERS[i], no_wrap=HEADERS[i] != "ending", overflow="fold")
    for row in all_cells:
        table.add_row(*(row[i] for i in kept))
    console.print(table)
    left_out = [h for i, h in enumerate(HEADERS) if i not in kept]
    if left_out:
        _wrapped(console, f"(left out at this width: {', '.join(left_out)}; --format csv has all)")
    rows = {row_key(r): r for r in history.rows}
    for number, chain in enumerate(history.chains, start=1):
        lines = chain_lines(chain, rows) + learning_lines(history, chain, rows)
        console.print(f"[bold]Chain {number}[/bold]: " + escape("\n".join(lines)))
    for problem in history.problems:
        _wrapped(console, f"{problem.kind}: {problem.text}")
    _wrapped(console, _overall(history))
    if "min/epoch" in [HEADERS[i] for i in kept]:
        _wrapped(console, MIN_EPOCH_NOTE)


def _wrapped(console: Console, text: str) -> None:
    """A paragraph at the console's width, later lines indented by two spaces."""
    import textwrap

    from rich.text import Text

    width = max(console.width, 40)
    for line in textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False):
        console.print(Text(line), soft_wrap=True)


def render_markdown(history: History) -> str:
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(cells(r)) + " |" for r in history.rows]
    rows = {row_key(r): r for r in history.rows}
    for number, chain in enumerate(history.chains, start=1):
        lines = chain_lines(chain, rows) + learning_lines(history, chain, rows)
        out += ["", f"**Chain {number}**: {lines[0]}", "", "```", *lines[1:], "```"]
    if history.problems:
        out += ["", "**Problems**", ""] + [f"- {p.kind}: {p.text}" for p in history.problems]
    out += ["", _overall(history), "", MIN_EPOCH_NOTE]
    return "\n".join(out)
