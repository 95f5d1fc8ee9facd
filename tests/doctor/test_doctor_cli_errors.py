"""Every usage error of every command is one line `tbx-doctor: error: ...` and exit 2;
`--version`; `-` (stdin) is refused clearly; start-up stays under a second without a fast path."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest
from doctor_helpers import REPO
from doctor_logtext import healthy, write_log
from typer.testing import CliRunner

from tbx_doctor import __version__
from tbx_doctor.cli import app
from tbx_doctor.commands.usage import STDIN_REFUSED

MISSING = "/nonexistent/x.out"
ERRORS = [
    (["check"], "tbx-doctor check needs PATH (see `tbx-doctor check --help`)"),
    (["history"], "tbx-doctor history needs PATH (see `tbx-doctor history --help`)"),
    (["check", MISSING, "--formats", "json"], "no such option: --formats"),
    (["bogus"], "no such command 'bogus' (see `tbx-doctor --help`)"),
    (["watch", MISSING, "--interval", "-5"], "invalid value '-5' for --interval"),
    (["watch", MISSING, "--margin-minutes", "-1"], "invalid value '-1' for --margin-minutes"),
    (["inspect-ckpt", "/nonexistent/c.pth"], "/nonexistent/c.pth"),
    (["check", MISSING], MISSING),
    (["check", "-"], STDIN_REFUSED.removeprefix("tbx-doctor: error: ")),
    (["history", "-"], STDIN_REFUSED.removeprefix("tbx-doctor: error: ")),
    (["watch", "-"], "give the job's log path, not - (stdin)"),
    (["hook", "--strict", "--log", MISSING], MISSING),
]


@pytest.mark.parametrize(("argv", "says"), ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_usage_errors_are_one_line_exit_2(argv, says):
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tbx-doctor: error: "), result.stderr
    assert says in lines[0]
    assert (result.stdout == "" and result.exception is None) or isinstance(
        result.exception, SystemExit
    )


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"tbx-doctor {__version__}\n")


def test_no_arguments_still_prints_the_help():
    result = CliRunner().invoke(app, [])
    assert "check" in result.output and "Usage" in result.output


def test_start_up_is_under_a_second(tmp_path):
    """The post-job path (`check` on a small log) through the one typer app: best of 3 under
    1 s of CPU time (CPU, not wall: the test machine is shared, waiting is not start-up)."""
    log = write_log(tmp_path, "a.out", healthy())
    best = float("inf")
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(
            [sys.executable, "-m", "tbx_doctor", "check", str(log), "--format", "json"],
            cwd=REPO,
            capture_output=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = min(best, cpu)
        assert proc.returncode == 0, proc.stderr
    assert best < 1.0
