"""Render reports: rich text for people, JSON for machines, markdown for tickets (same data).

Text fits the terminal (rich's width: the terminal's, else $COLUMNS, else 80): each paragraph
wraps with a hanging indent under its label, quoted log lines are cut to one line (their
`file:line` says where to read the rest), and computed numbers are rounded. Several jobs start
with a one-line-per-job summary table (as `seff`/`reportseff`), then the details.
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import TYPE_CHECKING

from tbx_doctor.diagnosis import SCHEMA, Report
from tbx_doctor.report import glance
from tbx_doctor.rules.describe import where

if TYPE_CHECKING:
    from rich.console import Console

VERDICT_STYLE = {
    "healthy": "bold green",
    "warning": "bold yellow",
    "failed": "bold red",
    "running": "bold cyan",
}
SEVERITY_STYLE = {"error": "red", "warning": "yellow", "info": "blue"}
STATUS_MARK = {"pass": "[x]", "fail": "[!]", "pending": "[~]", "unknown": "[?]"}
RUN_KEYS = (
    "job_id",
    "node",
    "start_time",
    "end_time",
    "wall_seconds",
    "path",
    "path_source",
    "source_epoch",
    "source_epochs_planned",
    "epochs_planned",
    "first_epoch",
    "last_epoch",
    "iterations_per_epoch",
    "last_iteration",
    "training_time_seconds",
    "end_reason",
    "output_dir",
)
SUMMARY_COLUMNS = ("job", "state", "epochs", "how it ended", "verdict", "main finding")
# A float printed with its full repr (7+ decimals: logs print at most 6, e.g. `lr: 0.000100`),
# outside a `quoted` log excerpt.
_LONG_FLOAT = re.compile(r"(?<![\w.])-?\d+\.\d{7,}(?![\w.])")


def round_number(value: float) -> str:
    """3 significant digits for people: 3.179304662536932 -> 3.18, 1215.0 -> 1215."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1e-4:
        return f"{value:.3g}"
    return f"{value:.2e}"


def tidy(text: str) -> str:
    """Round long floats in computed text; `backticked` log quotes are left as written."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # even parts are outside backticks
        parts[i] = _LONG_FLOAT.sub(lambda m: round_number(float(m.group())), parts[i])
    return "`".join(parts)


def headline(report: Report) -> str:
    """One line: verdict, job, and the top finding's title."""
    job = report.run.get("job_id") or report.files[0]
    top = report.findings[0].title if report.findings else "no findings"
    return f"{report.verdict.upper()}: job {job}: {top}"


def summary_rows(reports: list[Report]) -> list[tuple[str, ...]]:
    """One row per job: SUMMARY_COLUMNS."""
    rows = []
    for report in reports:
        data = report.to_dict()
        rows.append(
            (
                str(report.run.get("job_id") or report.files[0]),
                glance.state(data),
                glance.epochs(data),
                glance.how_it_ended(data, short=True),
                report.verdict,
                glance.main_finding(data),
            )
        )
    return rows


def render_json(reports: list[Report]) -> str:
    """One report -> its object; several -> {"schema": "tbx-doctor.check-many/1", "reports"}."""
    if len(reports) == 1:
        return json.dumps(reports[0].to_dict(), indent=2, allow_nan=False)
    worst = max(reports, key=lambda r: ["healthy", "running", "warning", "failed"].index(r.verdict))
    return json.dumps(
        {
            "schema": SCHEMA.replace("check/", "check-many/"),
            "verdict": worst.verdict,
            "reports": [r.to_dict() for r in reports],
        },
        indent=2,
        allow_nan=False,
    )


def _markdown_summary(reports: list[Report]) -> list[str]:
    cell = lambda text: text.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    lines.extend("| " + " | ".join(map(cell, row)) + " |" for row in summary_rows(reports))
    return [*lines, ""]


def _markdown_report(report: Report) -> list[str]:
    parts = [f"## {headline(report)}\n", f"Ended: {glance.how_it_ended(report.to_dict())}\n"]
    for f in report.findings:
        parts.append(
            f"### `{f.code}` ({f.severity}): {f.title}\n\n{tidy(f.explanation)}\n\n"
            f"**Fix:** {tidy(f.fix)}\n"
        )
        parts.extend(f"- `{where(e)}`: `{e.text.strip()[:200]}`" for e in f.evidence)
        parts.append("")
    parts.append("### Checklist\n")
    parts.extend(
        f"- {STATUS_MARK[i.status]} {i.item} ({i.status}): {tidy(i.evidence)}"
        for i in report.checklist
    )
    parts.append("\n### Run\n\n| fact | value |\n|---|---|")
    parts.extend(f"| {k} | {_value(report.run[k])} |" for k in RUN_KEYS if _shown(report, k))
    return [*parts, ""]


def render_markdown(reports: list[Report]) -> str:
    """Several jobs: the summary table first, then each job's details."""
    parts = _markdown_summary(reports) if len(reports) > 1 else []
    for report in reports:
        parts.extend(_markdown_report(report))
    return "\n".join(parts)


def _shown(report: Report, key: str) -> bool:
    return report.run.get(key) is not None


def _value(value: object) -> str:
    return round_number(value) if isinstance(value, float) else str(value)


def _paragraph(console: Console, label: str, style: str, text: str, indent: int) -> None:
    """`label text...` wrapped at the console's width, later lines indented by `indent`."""
    from rich.text import Text

    lines = textwrap.wrap(
        label + text,
        width=max(console.width, indent + 20),
        subsequent_indent=" " * indent,
        break_on_hyphens=False,
    ) or [label]
    first = Text(label, style=style) + Text(lines[0][len(label) :])
    console.print(first, soft_wrap=True)
    for line in lines[1:]:
        console.print(Text(line), soft_wrap=True)


def _quote(console: Console, where: str, text: str) -> None:
    """One evidence line, cut at the console's width."""
    from rich.text import Text

    line = f"    {where}  {text.strip()}".replace("\t", " ")
    if len(line) > console.width:
        line = line[: console.width - 3] + "..."
    console.print(Text(line, style="dim"), soft_wrap=True)


def _summary_table(reports: list[Report], console: Console) -> None:
    from rich import box
    from rich.table import Table

    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1), collapse_padding=True
    )
    for name in SUMMARY_COLUMNS:
        # Only "how it ended" wraps: codes and ids stay whole, searchable in the details.
        table.add_column(name, no_wrap=name != "how it ended", overflow="fold")
    for row in summary_rows(reports):
        table.add_row(*row[:4], f"[{VERDICT_STYLE[row[4]]}]{row[4]}[/]", row[5])
    console.print(table)


def _render_one(report: Report, console: Console) -> None:
    from rich.markup import escape

    console.print(f"[{VERDICT_STYLE[report.verdict]}]{escape(headline(report))}[/]")
    _paragraph(console, "ended: ", "bold", glance.how_it_ended(report.to_dict()), 7)
    for f in report.findings:
        console.print()
        label = f"{f.severity.upper():7} {f.code}: "
        _paragraph(console, label, SEVERITY_STYLE[f.severity], f.title, 2)
        _paragraph(console, "  ", "", tidy(f.explanation), 2)
        for e in f.evidence:
            _quote(console, where(e), e.text)
        _paragraph(console, "  fix: ", "green", tidy(f.fix), 7)
    console.print("\n[bold]Checklist[/]")
    for i in report.checklist:
        label = f"  {STATUS_MARK[i.status]} "
        _paragraph(console, label, "", f"{i.item}: {i.status} ({tidy(i.evidence)})", 6)
    console.print("\n[bold]Run[/]")
    for key in RUN_KEYS:
        if _shown(report, key):
            _paragraph(console, f"  {key}: ", "", _value(report.run[key]), 4)
    console.print()


def render_text(reports: list[Report], console: Console) -> None:
    """Several jobs: the summary table, then per job: headline and how it ended, findings
    ranked (with evidence and fix), checklist, run facts."""
    if len(reports) > 1:
        _summary_table(reports, console)
        console.print()
    for report in reports:
        _render_one(report, console)
