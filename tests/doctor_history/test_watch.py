"""`tbx-doctor watch`: a writer thread grows a log line by line; findings come in order, on time."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from history_helpers import REPO, epoch_lines, iteration
from typer.testing import CliRunner

from tbx_doctor.cli import app
from tbx_doctor.commands.watch import parse_limit
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.watch.follower import Event, Watcher, WatchOptions

BANNER = ["Job ID: 4242", "Start Time: Mon Nov 17 10:00:00 MST 2025", "Training from scratch"]
FAST = dict(interval=0.02, timeout=10.0, settle=0.2)


class Writer(threading.Thread):
    """Append (delay, lines) steps to `path`; record when each step's last line was written."""

    def __init__(self, path: Path, steps: list[tuple[float, list[str]]]) -> None:
        super().__init__(daemon=True)
        self.path, self.steps = path, steps
        self.written: list[float] = []

    def run(self) -> None:
        for delay, lines in self.steps:
            time.sleep(delay)
            with self.path.open("a") as handle:
                handle.write("".join(line + "\n" for line in lines))
            self.written.append(time.time())


def watch(path: Path, steps, **options) -> tuple[int, list[Event], Watcher, Writer]:
    events: list[Event] = []
    writer = Writer(path, steps)
    watcher = Watcher(path, WatchOptions(**{**FAST, **options}), Profile(), events.append)
    writer.start()
    code = watcher.run()
    writer.join()
    return code, events, watcher, writer


def kinds(events: list[Event]) -> list[str]:
    return [e.code or e.kind for e in events if e.kind in ("finding", "end", "timeout")]


def test_stall_then_nan_then_end_in_order_and_on_time(tmp_path):
    log = tmp_path / "train_4242.out"
    nan_line = iteration(0, 10, 20, float("nan"))
    steps = [
        (0.0, BANNER),
        (0.05, ["Start training"]),
        (0.6, [iteration(0, 0, 20, 2.1)]),
        (0.15, [nan_line]),
        (0.15, ["Training time 0:00:05", "End Time: Mon Nov 17 10:00:05 MST 2025"]),
    ]
    code, events, watcher, writer = watch(log, steps, stall_minutes=0.005)
    order = kinds(events)
    assert order.index("training-stalled") < order.index("nan-loss") < order.index("end")
    stalled = next(e for e in events if e.code == "training-stalled")
    # Start training written at writer.written[1]; the warning needs 0.3 s of silence.
    delay = watcher.started + stalled.at - writer.written[1]
    assert 0.3 <= delay < 1.0  # generous upper bound: 2 shared cores
    nan = next(e for e in events if e.code == "nan-loss")
    assert watcher.started + nan.at - writer.written[3] < 0.6
    starts = next(e for e in events if e.kind == "checklist" and "Training starts" in e.text)
    assert starts.status == "pass" and starts.at <= nan.at
    assert code == 1 and order[-1] == "end"


def test_waits_for_the_log_and_rereads_a_truncated_one(tmp_path):
    log = tmp_path / "train_4243.out"

    def truncate_then_finish() -> None:
        time.sleep(0.25)
        log.write_text("\n".join([*BANNER, "Start training", *epoch_lines(0)]) + "\n")
        time.sleep(0.15)
        log.write_text("\n".join(BANNER) + "\n")  # truncated and rewritten
        time.sleep(0.15)
        with log.open("a") as handle:
            handle.write("Training time 0:00:00\n")

    events: list[Event] = []
    thread = threading.Thread(target=truncate_then_finish, daemon=True)
    watcher = Watcher(log, WatchOptions(**FAST), Profile(), events.append)
    thread.start()
    watcher.run()
    thread.join()
    order = [e.kind for e in events]
    assert order[0] == "waiting" and order[1] == "appeared"
    assert "truncated" in order and order[-1] == "end"
    # Said when it changes only: passed on the first version, failed on the rewritten one.
    starts = [e.status for e in events if "Training starts" in e.text]
    assert starts == ["pass", "fail"]


def test_loss_stuck_at_zero_with_class_error_100(tmp_path):
    zeros = [iteration(0, i, 400, 0.0) for i in range(0, 120, 10)]
    steps = [(0.0, [*BANNER, "Start training"]), (0.1, zeros), (0.2, ["Training time 0:01:00"])]
    code, events, _, _ = watch(tmp_path / "train_1.out", steps, zero_loss_iterations=100)
    assert "loss-stuck-zero" in kinds(events) and code == 0  # a warning, not an error
    healthy = [iteration(0, i, 400, 1.5) for i in range(0, 120, 10)]
    steps = [(0.0, [*BANNER, "Start training"]), (0.1, healthy), (0.2, ["Training time 0:01:00"])]
    _, events, _, _ = watch(tmp_path / "train_2.out", steps, zero_loss_iterations=100)
    assert "loss-stuck-zero" not in kinds(events)


def test_time_limit_near_from_slurm_end_time_in_env_dump(tmp_path):
    end = int(time.time()) + 2
    env = ["{", f'  "SLURM_JOB_END_TIME": "{end}",', "}"]
    steps = [
        (0.0, [*BANNER, *env, "Start training", iteration(0, 0, 6888, 2.0)]),
        (0.1, [iteration(0, 10, 6888, 2.0)]),
    ]
    code, events, watcher, _ = watch(
        tmp_path / "train_3.out", steps, margin_minutes=1 / 60, timeout=1.5
    )
    near = next(e for e in events if e.code == "time-limit-near")
    # Warned once less than the 1 s margin was left, not before.
    assert end - 1.0 <= watcher.started + near.at < end
    assert kinds(events)[-2:] == ["time-limit-near", "timeout"] and code == 0


def test_timeout_stops_a_silent_job(tmp_path):
    steps = [(0.0, [*BANNER, "Start training", iteration(0, 0, 20, 2.0)])]
    code, events, _, _ = watch(tmp_path / "train_5.out", steps, timeout=0.3)
    assert events[-1].kind == "timeout" and 0.3 <= events[-1].at < 1.0 and code == 0


def test_cli_watch_on_an_ended_job_exits_like_check():
    log = REPO / "fixtures" / "incident" / "train_tbx11k_39581627.out"
    result = CliRunner().invoke(app, ["watch", str(log), "--interval", "0.01"])
    assert result.exit_code == 1
    assert "ERROR zero-epochs" in result.stdout and "end: job ended" in result.stdout


def test_cli_watch_bad_time_limit_is_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["watch", str(tmp_path / "x.out"), "--time-limit", "4h"])
    assert result.exit_code == 2


def test_time_limit_option_counts_from_start_time_and_err_cancel_ends_the_watch(tmp_path):
    log, err = tmp_path / "train_6.out", tmp_path / "train_6.err"
    begun = time.time()
    start = time.strftime("%a %b %d %H:%M:%S MST %Y", time.localtime(begun))
    cancel = "slurmstepd: error: *** JOB 6 ON sg1 CANCELLED AT 2025-11-18T20:31:34 DUE TO TIME "
    steps = [(0.0, ["Job ID: 6", f"Start Time: {start}", "Start training", iteration(0, 0, 99, 2)])]

    def cancel_later() -> None:
        time.sleep(1.2)
        err.write_text(cancel + "LIMIT ***\n")

    thread = threading.Thread(target=cancel_later, daemon=True)
    thread.start()
    code, events, watcher, _ = watch(log, steps, time_limit=2.0, margin_minutes=1 / 60)
    thread.join()
    near = next(e for e in events if e.code == "time-limit-near")
    # Start Time has whole seconds: the deadline is 1-2 s after `begun`, the warning 1 s before.
    assert int(begun) <= watcher.started + near.at < int(begun) + 1.6
    assert kinds(events)[-2:] == ["time-limit", "end"] and code == 0


def test_a_replaced_log_is_read_from_its_start(tmp_path):
    log = tmp_path / "train_7.out"

    def rotate() -> None:
        time.sleep(0.15)
        fresh = tmp_path / "new.out"
        fresh.write_text("\n".join([*BANNER, "Start training", "Training time 0:00:00"]) + "\n")
        os.replace(fresh, log)

    log.write_text("\n".join(BANNER) + "\n")
    thread = threading.Thread(target=rotate, daemon=True)
    events: list[Event] = []
    watcher = Watcher(log, WatchOptions(**FAST), Profile(), events.append)
    thread.start()
    code = watcher.run()
    thread.join()
    assert [e.kind for e in events if e.kind in ("rotated", "end")] == ["rotated", "end"]
    assert "zero-epochs" in kinds(events) and code == 1


def test_parse_limit_forms():
    assert parse_limit("4:00:00") == 4 * 3600
    assert parse_limit("1-02:00:00") == 26 * 3600
    assert parse_limit("90") == 90 * 60
    assert parse_limit("30:00") == 30 * 60


def test_incident_log_fed_line_by_line(tmp_path):
    source = REPO / "fixtures" / "incident"
    (tmp_path / "train_tbx11k_39543743.out").write_text(
        (source / "train_tbx11k_39543743.out").read_text()
    )  # the sibling that proves the checkpoint had finished epoch 49 of 50
    lines = (source / "train_tbx11k_39581627.out").read_text().splitlines()
    steps = [(0.03, [line]) for line in lines]
    code, events, watcher, writer = watch(tmp_path / "train_tbx11k_39581627.out", steps)
    order = kinds(events)
    assert order[0] == "resumed-from-checkpoint"  # said when the resume line arrives
    assert set(order[1:3]) == {"zero-epochs", "immediate-exit"}
    # The wrapper's "Training completed successfully!" comes one line later.
    assert order[3] == "false-success"
    assert order[-1] == "end" and code == 1
    training_time = next(i for i, line in enumerate(lines) if line.startswith("Training time"))
    zero = next(e for e in events if e.code == "zero-epochs")
    # Reported as soon as `Training time` shows the loop ran zero times, not before.
    assert watcher.started + zero.at >= writer.written[training_time]
    assert watcher.started + zero.at - writer.written[training_time] < 0.5
