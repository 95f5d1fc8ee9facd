"""Render reports: rich text for people, JSON for machines, markdown for tickets (same data)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tbx_doctor.diagnosis import SCHEMA, Report

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


def headline(report: Report) -> str:
    """One line: verdict, job, and the top finding's title."""
    job = report.run.get("job_id") or report.files[0]
    top = report.findings[0].title if report.findings else "no findings"
    return f"{report.verdict.upper()}: job {job}: {top}"


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


def render_markdown(reports: list[Report]) -> str:
    parts = []
    for report in reports:
        parts.append(f"## {headline(report)}\n")
        for f in report.findings:
            parts.append(
                f"### `{f.code}` ({f.severity}): {f.title}\n\n{f.explanation}\n\n**Fix:** {f.fix}\n"
            )
            parts.extend(f"- `{e.file}:{e.line}`: `{e.text.strip()[:200]}`" for e in f.evidence)
            parts.append("")
        parts.append("### Checklist\n")
        parts.extend(
            f"- {STATUS_MARK[i.status]} {i.item} ({i.status}): {i.evidence}"
            for i in report.checklist
        )
        parts.append("\n### Run\n\n| fact | value |\n|---|---|")
        parts.extend(
            f"| {k} | {report.run.get(k)} |" for k in RUN_KEYS if report.run.get(k) is not None
        )
        parts.append("")
    return "\n".join(parts)


def render_text(reports: list[Report], console: Console) -> None:
    """Headline verdict, findings ranked (with evidence and fix), checklist, run facts."""
    from rich.markup import escape

    for report in reports:
        console.print(f"[{VERDICT_STYLE[report.verdict]}]{escape(headline(report))}[/]")
        for f in report.findings:
            console.print(
                f"\n[{SEVERITY_STYLE[f.severity]}]{f.severity.upper():7}[/] [bold]{f.code}[/]: "
                f"{escape(f.title)}"
            )
            console.print(f"  {escape(f.explanation)}", soft_wrap=True)
            for e in f.evidence:
                console.print(
                    f"    [dim]{escape(e.file)}:{e.line}[/]  {escape(e.text.strip()[:200])}",
                    soft_wrap=True,
                )
            console.print(f"  [green]fix:[/] {escape(f.fix)}", soft_wrap=True)
        console.print("\n[bold]Checklist[/]")
        for i in report.checklist:
            console.print(
                f"  {escape(STATUS_MARK[i.status])} {escape(i.item)}: {i.status} "
                f"({escape(i.evidence)})",
                soft_wrap=True,
            )
        console.print("\n[bold]Run[/]")
        for key in RUN_KEYS:
            if report.run.get(key) is not None:
                console.print(f"  {key}: {escape(str(report.run[key]))}", soft_wrap=True)
        console.print()
