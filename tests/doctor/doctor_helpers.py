"""Shared helpers for the doctor's tests: run the CLI in-process and parse its JSON.

(A uniquely named module rather than conftest.py: other test folders have their own conftest.)
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tbx_doctor.cli import app

REPO = Path(__file__).resolve().parents[2]


def _real_logs() -> Path | None:
    for candidate in (REPO / "../shared/real-logs", Path("/work/shared/real-logs")):
        if (candidate / "dino_tbx11k" / "logs").is_dir():
            return candidate.resolve() / "dino_tbx11k"
    return None


REAL_LOGS = _real_logs()


def run_check(*args: str | Path) -> tuple[int, dict | str]:
    """Invoke `tbx-doctor check ... --format json`; return (exit code, parsed report or output)."""
    result = CliRunner().invoke(app, ["check", *map(str, args), "--format", "json"])
    try:
        return result.exit_code, json.loads(result.stdout)
    except json.JSONDecodeError:
        return result.exit_code, result.output


def codes_of(report: dict) -> dict[str, str]:
    """code -> severity of a report's findings."""
    return {f["code"]: f["severity"] for f in report["findings"]}
