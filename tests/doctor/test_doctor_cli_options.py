"""`tbx-doctor codes` covers every command's codes; bad option values give one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from doctor_helpers import REPO
from typer.testing import CliRunner

from tbx_doctor.cli import app
from tbx_doctor.findings import CODES
from tbx_doctor.watch.early_warnings import WATCH_CODES


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


EXPECT_LINE = (
    "tbx-doctor: error: invalid value 'bogus' for --expect "
    "(allowed: fresh, pretrained, resume, any)"
)
FORMAT_LINE = "tbx-doctor: error: invalid value 'yaml' for --format (allowed: text, json, markdown)"
BAD_VALUES = [
    (["check", "x.out", "--expect", "bogus"], EXPECT_LINE),
    (["check", "x.out", "--format=yaml"], FORMAT_LINE),
    (["hook", "--expect", "bogus"], EXPECT_LINE),
]


@pytest.mark.parametrize(("argv", "line"), BAD_VALUES)
def test_bad_value_typer_path_is_one_line(argv, line):
    result = CliRunner().invoke(app, argv)
    assert (result.exit_code, result.stderr, result.stdout) == (2, line + "\n", "")


def test_bad_value_of_other_commands_names_the_reason():
    result = CliRunner().invoke(app, ["history", "x", "--format", "zz"])
    assert result.exit_code == 2
    assert result.stderr == (
        "tbx-doctor: error: invalid value 'zz' for --format (allowed: text, json, markdown, csv)\n"
    )
    result = CliRunner().invoke(app, ["watch", "x.out", "--interval", "soon"])
    assert result.exit_code == 2 and result.stderr.startswith(
        "tbx-doctor: error: invalid value 'soon' for --interval (input should be a valid number"
    )
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(("argv", "line"), [BAD_VALUES[0], BAD_VALUES[1]])
def test_bad_value_via_subprocess(argv, line, tmp_path):
    log = tmp_path / "x.out"
    log.write_text("Start training\n")
    argv = [str(log) if a == "x.out" else a for a in argv]
    proc = subprocess.run(
        [sys.executable, "-m", "tbx_doctor", *argv], cwd=REPO, capture_output=True, text=True
    )
    assert (proc.returncode, proc.stderr, proc.stdout) == (2, line + "\n", "")


def test_bad_time_limit_of_watch_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["watch", str(tmp_path / "x.out"), "--time-limit", "soon"])
    assert (result.exit_code, result.stderr) == (
        2,
        "tbx-doctor: error: invalid value for --time-limit "
        "('soon': use H:MM:SS, D-HH:MM:SS or minutes)\n",
    )
