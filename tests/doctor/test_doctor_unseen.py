# ruff: noqa: E501  (log lines quoted whole, as SLURM and the trainers print them)
"""Seen, not seen and absent kept apart (issue 11): zero-epochs only when the log shows the
loop ran empty; an .err alone or a fragment says unknown and names the file that would tell."""

from __future__ import annotations

import json

import pytest
from doctor_helpers import codes_of, run_check
from doctor_logtext import banner, epoch_lines

TIME_LIMIT = (
    "slurmstepd: error: *** JOB 4242 ON n1 CANCELLED AT 2025-11-16T21:36:29 DUE TO TIME LIMIT ***"
)


def _write(tmp_path, name: str, lines: list[str]):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_training_time_with_days_is_not_zero_epochs(tmp_path):
    rc, report = run_check(_write(tmp_path, "tail_1.out", ["Training time 2 days, 6:18:48"]))
    assert "zero-epochs" not in codes_of(report) and rc == 0
    assert report["run"]["training_time_seconds"] == 2 * 86400 + 6 * 3600 + 18 * 60 + 48


def test_tail_with_epoch_total_time_is_not_zero_epochs(tmp_path):
    lines = ["Epoch: [99] Total time: 0:00:11 (0.1 s / it)", "Training time 0:42:45"]
    rc, report = run_check(_write(tmp_path, "tail_2.out", lines))
    assert rc == 0 and "zero-epochs" not in codes_of(report)
    assert report["run"]["last_epoch"] == 99 and report["run"]["training"] == "seen"


def test_other_trainers_progress_rules_out_zero_epochs(tmp_path):
    for n, line in enumerate(
        [
            "2023-05-01 10:00:00,000 - mmdet - INFO - Epoch [3][50/1000]\tlr: 2.000e-02, loss: 0.8",
            "Epoch 3:  45%|####5     | 450/1000 [01:02<01:10, 7.8it/s, loss=0.412, v_num=1]",
            "[05/01 10:00:00 d2.utils.events]:  eta: 1:00:00  iter: 199  total_loss: 1.2  time: 0.4",
        ]
    ):
        _, report = run_check(_write(tmp_path, f"t_{n}.out", [line, "Training time 0:00:00"]))
        assert "zero-epochs" not in codes_of(report), line
        assert report["run"]["training"] == "seen"


def test_err_alone_says_unknown_and_names_the_out(tmp_path):
    err = _write(tmp_path, "train_4242.err", ["UserWarning: something", TIME_LIMIT])
    _, report = run_check(err)
    limit = next(f for f in report["findings"] if f["code"] == "time-limit")
    assert "before any training iteration" not in limit["explanation"]
    assert "epochs finished in this job: unknown" in limit["explanation"]
    assert "train_4242.out" in limit["explanation"]
    start = report["checklist"][1]
    assert start["status"] == "unknown" and "train_4242.out" in start["evidence"]
    assert report["run"]["training"] == "unknown"
    assert any(w.endswith("train_4242.out") for w in report["run"]["would_tell"])


def test_err_uses_the_out_beside_it(tmp_path):
    _write(tmp_path, "train_4242.out", [*banner(4242), "Start training", *epoch_lines(0, n=4)])
    err = _write(tmp_path, "train_4242.err", [TIME_LIMIT])
    _, report = run_check(err)
    limit = next(f for f in report["findings"] if f["code"] == "time-limit")
    assert "epochs finished in this job: 0" in limit["explanation"]
    assert report["run"]["training"] == "seen"


def test_err_uses_log_txt_of_the_run_folder_it_lies_in(tmp_path):
    (tmp_path / "log.txt").write_text(json.dumps({"epoch": 0, "train_loss": 2.2}) + "\n")
    err = _write(tmp_path, "train_4242.err", [TIME_LIMIT])
    _, report = run_check(err)
    assert report["run"]["training"] == "seen" and str(tmp_path) == report["run"]["output_dir"]


def test_fragment_without_start_is_incomplete_not_absent(tmp_path):
    lines = epoch_lines(5, n=4)[:3]  # a pasted middle: epoch 5, no banner, no ending
    _, report = run_check(_write(tmp_path, "paste.txt", lines))
    titles = [f["title"] for f in report["findings"] if f["code"] == "incomplete-log"]
    assert "The log starts mid-run" in titles
    assert report["checklist"][1]["status"] == "pass"


def test_banner_and_ending_without_iterations_is_still_absent(tmp_path):
    lines = [*banner(7), "Start training", "Training time 0:00:00", "End Time: x"]
    rc, report = run_check(_write(tmp_path, "train_7.out", lines))
    assert rc == 1 and "zero-epochs" in codes_of(report)
    assert report["run"]["training"] == "absent" and report["checklist"][1]["status"] == "fail"


def test_json_is_strict_and_log_txt_nan_is_flagged(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    records = [{"epoch": 0, "train_loss": 2.1}, {"epoch": 1, "train_loss": float("nan")}]
    (run / "log.txt").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    rc, report = run_check(run)
    assert isinstance(report, dict), report  # parsed by the strict helper below too
    assert rc == 1 and codes_of(report)["nan-loss"] == "error"
    assert report["run"]["epochs"][1]["loss"] is None
    json.dumps(report, allow_nan=False)


def test_own_reports_are_skipped_and_bad_inputs_exit_2(tmp_path):
    log = _write(tmp_path, "train_9.out", [*banner(9), "Start training", *epoch_lines(0, n=4)])
    own = tmp_path / "train_9.doctor.json"
    own.write_text('{"schema": "tbx-doctor.check/1"}')
    rc, report = run_check(log, own)
    assert report["files"][0].endswith("train_9.out") and "reports" not in report
    fake = tmp_path / "x.out.gz"
    fake.write_text("plain text named .gz\n")
    rc, output = run_check(fake)
    assert rc == 2 and "not gzip-compressed" in output
    binary = tmp_path / "y.out"
    binary.write_bytes(bytes(range(256)) * 64)
    rc, output = run_check(binary)
    assert rc == 2 and "binary data" in output


def test_no_iteration_line_after_another_trainers_start_is_unknown(tmp_path):
    lines = [
        "2020-08-03T10:20:25 | mmf.trainers.core.training_loop: Starting training...",
        "ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory (shm).",
    ]
    _, report = run_check(_write(tmp_path, "mmf.log", lines))
    assert report["run"]["training"] == "unknown"
    assert report["checklist"][1]["status"] == "unknown"
    assert "before any training iteration" not in report["findings"][0]["explanation"]


def test_dino_start_without_iterations_is_absent(tmp_path):
    lines = [
        "Namespace(epochs=12, lr=0.0001)",
        "Start training",
        "Traceback (most recent call last):",
    ]
    _, report = run_check(_write(tmp_path, "dino.out", [*lines, "KeyError: 'bogus'"]))
    assert report["run"]["training"] == "absent"
    assert "before any training iteration" in report["findings"][0]["explanation"]


@pytest.mark.parametrize(
    "lines",
    [
        [
            "Start Training (Batch size: 128)...",
            "Epoch [1/25] LR: 0.1 | Loss: 1.7",
            "Finished Training. Total time: 931.89 seconds",
        ],
        [
            "      1/10      4.35G      1.394      4.212       1.26         28        640: 100%|##| 28/28 [00:17<00:00,  1.63it/s]",
            "300 epochs completed in 8.675 hours.",
        ],
        [
            "Epoch 2: : 115816it [7:02:37,  4.57it/s, loss=2.1, v_num=3hqp]",
            "`Trainer.fit` stopped: `max_steps=400000` reached.",
        ],
    ],
)
def test_other_trainers_normal_ends_are_endings(tmp_path, lines):
    _, report = run_check(_write(tmp_path, "run.log", lines))
    assert report["run"]["training"] == "seen"
    assert "The log ends without saying how the job ended" not in [
        f["title"] for f in report["findings"]
    ]


@pytest.mark.parametrize(
    "line",
    [
        "Epoch: [34/80] Total time: 1:01:24 (0.4984 s / it)",
        "I20240724 09:37:05 4020743 dino_fl helpers.py:102] Training  [  3490/125000]  eta: 14:39:00  lr: 0.0000 (0.0000)",
        '{"train_loss": 7.698364663490955, "train_lr": 4.99820136696111e-05, "epoch": 0}',
    ],
)
def test_more_training_lines_are_seen(tmp_path, line):
    _, report = run_check(_write(tmp_path, "frag.txt", [line]))
    assert report["run"]["training"] == "seen"


@pytest.mark.parametrize(
    ("line", "job_id"),
    [
        ("srun: launch/slurm: _step_signal: Terminating StepId=3022331.0", "3022331"),
        (
            "slurmstepd: error: Detected 2 oom-kill event(s) in step 3756240.batch cgroup.",
            "3756240",
        ),
    ],
)
def test_job_id_from_slurm_step_lines(tmp_path, line, job_id):
    assert run_check(_write(tmp_path, "log.txt", [line]))[1]["run"]["job_id"] == job_id


def test_fresh_copy_of_an_old_log_is_not_running(tmp_path):
    lines = [
        "2020-05-08 18:32:34,938 - mmdet - INFO - Start running, host: a, work_dir: /w",
        "2020-05-08 18:33:04,627 - mmdet - INFO - Epoch [1][50/7517]\tlr: 0.00125, loss: 1.2",
    ]
    _, report = run_check(_write(tmp_path, "mmdet.log", lines))  # written just now
    assert report["verdict"] != "running"
    assert "The log ends without saying how the job ended" in [
        f["title"] for f in report["findings"]
    ]


def test_a_tqdm_bar_rules_out_zero_epochs(tmp_path):
    lines = [
        "Start training",
        " 45%|####5     | 450/1000 [01:02<01:10,  7.8it/s]",
        "Training time 0:00:00",
    ]
    _, report = run_check(_write(tmp_path, "bar.log", lines))
    assert not {"zero-epochs", "immediate-exit"} & set(codes_of(report))
    assert report["run"]["training"] == "unknown"
