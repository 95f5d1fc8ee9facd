"""Render a `History`: text (rich) for people, JSON / CSV for machines, markdown for tickets.

JSON (`tbx-doctor.history/1`): {"schema", "jobs": [row with its "epochs"], "chains": [...],
"problems": [{"kind", "jobs", "text"}], "overall": {...}}. CSV is the pandas table, one row
per job (columns `history.COLUMNS`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from tbx_doctor.history.chain import Chain, History, row_key
from tbx_doctor.history.curves import learning_lines
from tbx_doctor.history.rows import JobRow, to_frame
from tbx_doctor.report.sparkline import scale_note, sparkline

if TYPE_CHECKING:
    from rich.console import Console

SCHEMA = "tbx-doctor.history/1"
HEADERS = ("job", "kind", "start", "wall", "ending", "path (source job)", "epochs", "it/epoch")
HEADERS += ("min/epoch", "loss", "AP", "AP50", "EMA AP")


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
    if row.first_epoch is None:
        return "none" if row.kind == "train" else "-"
    last = f"{row.last_epoch}" + ("" if row.last_epoch_finished else " (cut)")
    return f"{row.first_epoch}-{last}" if row.first_epoch != row.last_epoch else last


def cells(row: JobRow) -> tuple[str, ...]:
    """One table row of text cells (shared by the text and markdown renderers)."""
    ending = row.ending + (f" ({row.ending_detail})" if row.ending_detail else "")
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
        _num(row.seconds_per_epoch / 60 if row.seconds_per_epoch else None, ".1f"),
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


def render_text(history: History, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for row in history.rows:
        table.add_row(*cells(row))
    console.print(table)
    rows = {row_key(r): r for r in history.rows}
    for number, chain in enumerate(history.chains, start=1):
        lines = chain_lines(chain, rows) + learning_lines(history, chain, rows)
        console.print(f"[bold]Chain {number}[/bold]: " + escape("\n".join(lines)))
    for problem in history.problems:
        console.print(f"[yellow]{problem.kind}[/yellow]: {problem.text}")
    console.print(_overall(history))


def render_markdown(history: History) -> str:
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(cells(r)) + " |" for r in history.rows]
    rows = {row_key(r): r for r in history.rows}
    for number, chain in enumerate(history.chains, start=1):
        lines = chain_lines(chain, rows) + learning_lines(history, chain, rows)
        out += ["", f"**Chain {number}**: {lines[0]}", "", "```", *lines[1:], "```"]
    if history.problems:
        out += ["", "**Problems**", ""] + [f"- {p.kind}: {p.text}" for p in history.problems]
    out += ["", _overall(history)]
    return "\n".join(out)
