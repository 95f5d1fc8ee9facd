"""A stop signal after the final checkpoint is saved must not turn a finished run into a failure.

SLURM sends its warning (SIGUSR1) 120 s before the time limit whether or not training is done;
when it lands during shutdown the process must still exit 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tbx_train.data import write_synthetic_tbx11k
from tbx_train.signals import StopRequest


def test_ignore_late_ignores_the_signals_and_restore_still_undoes_it():
    before = signal.getsignal(signal.SIGUSR1)
    stop = StopRequest().install()
    stop.ignore_late()
    assert stop.late and signal.getsignal(signal.SIGUSR1) is signal.SIG_IGN
    os.kill(os.getpid(), signal.SIGUSR1)  # ignored: neither fatal nor a stop request
    assert not stop.requested
    stop.restore()
    assert signal.getsignal(signal.SIGUSR1) is before


def _signal_until_exit(process: subprocess.Popen, timeout: float) -> None:
    """SIGUSR1 every millisecond until the process ends: some land after the handler is gone."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            os.kill(process.pid, signal.SIGUSR1)
        except ProcessLookupError:
            break
        time.sleep(0.001)


def test_sigusr1_after_the_final_save_leaves_exit_code_0(tmp_path):
    write_synthetic_tbx11k(tmp_path / "data", images=5, seed=0, size=64, val_fraction=0.2)
    command = [
        sys.executable, "-m", "tbx_train", "run", "--preset", "tiny",
        "--data-root", str(tmp_path / "data"), "--output-dir", str(tmp_path / "run"),
        "--epochs", "1", "--batch-size", "2", "--num-workers", "0", "--device", "cpu",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines = []
    for line in process.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if line.startswith("Saved checkpoint:") and "(epoch 0)" in line:
            break  # the final save of the last epoch
    _signal_until_exit(process, timeout=120)
    lines.extend(process.stdout)  # type: ignore[union-attr]
    code = process.wait(timeout=60)
    log = "".join(lines)
    assert "(epoch 0)" in log and "Training time" in log, log
    assert code == 0, f"exit {code} (-10: killed by SIGUSR1 during shutdown)\n{log}"
