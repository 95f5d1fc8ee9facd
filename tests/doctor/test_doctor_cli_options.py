"""`tbx-doctor codes` covers every command's codes; bad option values give one line, exit 2."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tbx_doctor.cli import app
from tbx_doctor.findings import CODES
from tbx_doctor.watch_rules import WATCH_CODES


def test_codes_lists_watch_codes_marked_watch_only():
    lines = CliRunner().invoke(app, ["codes"]).output.splitlines()
    by_code = {line.split()[0]: line for line in lines}
    assert set(by_code) == set(CODES) | set(WATCH_CODES)
    assert len(lines) == len(CODES) + len(WATCH_CODES)
    for code in WATCH_CODES:
        assert "[watch only]" in by_code[code] and WATCH_CODES[code][1] in by_code[code]
    assert all("[watch only]" not in by_code[code] for code in CODES)
    assert set(WATCH_CODES) == {"training-stalled", "loss-stuck-zero", "time-limit-near"}


def test_codes_json_marks_watch_only():
    data = json.loads(CliRunner().invoke(app, ["codes", "--json"]).output)
    assert data["training-stalled"] == {
        "severity": "warning",
        "meaning": WATCH_CODES["training-stalled"][1],
        "watch_only": True,
    }
    assert "watch_only" not in data["nan-loss"]
    assert set(data) == set(CODES) | set(WATCH_CODES)
