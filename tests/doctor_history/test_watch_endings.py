"""`tbx-doctor watch`: a warning for each unsaved epoch, a clean end on SIGTERM, and a log that
never appears is an error (exit 2), not a quiet success."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from history_helpers import REPO, epoch_lines, iteration
from test_watch import BANNER, watch
from typer.testing import CliRunner

from tbx_doctor.cli import app


def test_time_limit_near_warns_for_each_unsaved_epoch(tmp_path):
    end = int(time.time()) + 60
    env = ["{", f'  "SLURM_JOB_END_TIME": "{end}",', "}"]
    steps = [
        (0.0, [*BANNER, *env, "Start training", iteration(0, 0, 20, 2.0)]),
        (0.2, epoch_lines(0)[1:]),  # epoch 0 ends (and is saved by the epoch's end)
        (0.2, [iteration(1, 0, 20, 2.0), iteration(1, 5, 20, 2.0)]),
    ]
    _, events, _, _ = watch(tmp_path / "train_8.out", steps, margin_minutes=5, timeout=1.2)
    near = [e for e in events if e.code == "time-limit-near"]
    assert [("epoch 0" in e.text, "epoch 1" in e.text) for e in near] == [
        (True, False),
        (False, True),
    ]


def test_a_log_that_never_appears_is_exit_2():
    result = CliRunner().invoke(
        app, ["watch", "/nonexistent/train_1.out", "--timeout", "0.2", "--interval", "0.05"]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "tbx-doctor: error: /nonexistent/train_1.out never appeared "
        "(is the path right, has the job started?)\n"
    )


def test_sigterm_ends_the_watch_with_its_final_event(tmp_path):
    log = tmp_path / "train_9.out"
    log.write_text("\n".join([*BANNER, "Start training", iteration(0, 0, 20, 2.0)]) + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tbx_doctor", "watch", str(log), "--interval", "0.05"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first event: the watcher is running
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert first and proc.returncode == 0, err
    last = out.strip().splitlines()[-1]
    assert "stopped: stopped by SIGTERM: verdict running, exit code 0" in last
    assert "Traceback" not in err
