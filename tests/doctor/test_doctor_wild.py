# ruff: noqa: E501  (log lines quoted whole, as SLURM and the trainers print them)
"""Lines from other trainers and other SLURM versions (issue 11): endings anywhere in a line,
NaN in every trainer's words, the cause before its consequences, job ids from SLURM only."""

from __future__ import annotations

import pytest
from doctor_helpers import codes_of, run_check

from tbx_doctor.reading.job_files import JobFiles
from tbx_doctor.reading.logscan import scan_log

ENDINGS = [
    (
        "slurmstepd: error: *** JOB 12 CANCELLED AT 2014-01-01T00:00:00 DUE TO TIME LIMIT ***",
        "time-limit",
    ),
    (
        "slurmstepd: error: *** STEP 12.0 ON n3 CANCELLED AT 2024-01-01T00:00:00 DUE TO TIME LIMIT ***",
        "time-limit",
    ),
    (
        "slurmstepd: error: *** STEP 12.batch ON n3 CANCELLED AT 2024-01-01T00:00:00 DUE TO PREEMPTION ***",
        "preempted",
    ),
    (
        "slurmstepd: error: *** JOB 12 ON n3 CANCELLED AT 2024-01-01T00:00:00 DUE TO NODE FAILURE, SEE SLURMCTLD LOG FOR DETAILS ***",
        "node-fail",
    ),
    ("slurmstepd: error: *** JOB 12 ON n3 CANCELLED AT 2024-01-01T00:00:00 ***", "cancelled"),
    (
        "slurmstepd: error: *** JOB 12 ON n3 CANCELLED AT 2024-01-01T00:00:00 DUE to SIGNAL Terminated ***",
        "cancelled",
    ),
    # joined tqdm frames before SLURM's message on the same line
    (
        "\r".join(f" {i}%|#   | {i}/100 [00:01<00:09]" for i in range(400))
        + "slurmstepd: error: *** JOB 12 ON n3 CANCELLED AT 2024-01-01T00:00:00 DUE TO TIME LIMIT ***",
        "time-limit",
    ),
    ("slurmstepd: error: execve(): /home/u/train.sh: No such file or directory", "config-error"),
    ("slurmstepd: error: execve(): train.sh: Permission denied", "config-error"),
    (
        "slurmstepd: error: Detected 1 oom_kill event in StepId=12.batch. Some of your processes may have been killed",
        "host-oom-killed",
    ),
    ("srun: error: n3: task 0: Segmentation fault (core dumped)", "task-failed"),
    ("Killed", "task-failed"),
]


@pytest.mark.parametrize(("line", "code"), ENDINGS)
def test_slurm_endings_in_every_form(tmp_path, line, code):
    path = tmp_path / "slurm-12.out"
    path.write_text("Start training\n" + line + "\n")
    _, report = run_check(path)
    assert code in codes_of(report), [f["title"] for f in report["findings"]]
    quoted = [e["text"] for f in report["findings"] for e in f["evidence"]]
    assert any(len(t) < 500 and ("***" in t or "error" in t or "Killed" in t) for t in quoted)


NANS = [
    "2023-05-01 10:00:00,000 - mmdet - INFO - Epoch [1][50/1000]\tlr: 2.000e-02, loss_cls: nan, loss_bbox: nan, loss: nan",
    "FloatingPointError: Loss became infinite or NaN at iteration=412!",
    "Epoch 3:  45%|####5     | 450/1000 [01:02<01:10, 7.8it/s, loss=nan, v_num=1]",
    "step 1200 loss=inf lr=0.0001",
    "Loss is nan, stopping training",
    "I20230501 10:00:00 train.py:300] NaN detected",
    "epoch 2 iter 40 loss: tensor(nan, device='cuda:0', grad_fn=<AddBackward0>)",
    '{"train_loss": NaN, "epoch": 3}',
]


@pytest.mark.parametrize("line", NANS)
def test_nan_in_other_trainers_words(tmp_path, line):
    path = tmp_path / "a.out"
    path.write_text("Start training\n" + line + "\n")
    _, report = run_check(path)
    assert report["findings"][0]["code"] == "nan-loss"


BENIGN = [
    "INFO: nan_check enabled, info: 3",
    "Epoch 3: 100%|##########| 1000/1000 [02:00<00:00, loss=0.41, v_num=1]",
    "  min_lr: inf is not used",
]


@pytest.mark.parametrize("line", BENIGN)
def test_no_nan_in_finite_lines(tmp_path, line):
    path = tmp_path / "a.out"
    path.write_text("Start training\n" + line + "\n")
    _, report = run_check(path)
    assert "nan-loss" not in codes_of(report)


def _crash_log(tmp_path, lines: list[str]):
    path = tmp_path / "slurm-77.out"
    path.write_text("Start training\nEpoch 0: 10%|#| 10/100 [loss=1.0]\n" + "\n".join(lines) + "\n")
    return run_check(path)[1]


def test_first_failed_task_leads(tmp_path):
    report = _crash_log(
        tmp_path,
        ["srun: error: n1: task 3: Terminated", "srun: error: n1: task 0: Segmentation fault"],
    )
    task = next(f for f in report["findings"] if f["code"] == "task-failed")
    assert "task 0: Segmentation fault" in task["explanation"]


def test_signal_before_signal_exception(tmp_path):
    report = _crash_log(
        tmp_path,
        [
            "slurmstepd: error: *** JOB 77 ON n1 CANCELLED AT 2024-01-01T00:00:00 DUE TO PREEMPTION ***",
            "Traceback (most recent call last):",
            '  File "run.py", line 3, in <module>',
            "torch.distributed.elastic.multiprocessing.api.SignalException: Process 9 got signal: 15",
        ],
    )
    assert report["findings"][0]["code"] == "preempted"
    assert "crash-traceback" not in codes_of(report)


def test_worker_exception_before_launcher_summary(tmp_path):
    report = _crash_log(
        tmp_path,
        [
            "Traceback (most recent call last):",
            '  File "train.py", line 9, in <module>',
            "ValueError: bad anchor config",
            "Traceback (most recent call last):",
            '  File "torchrun", line 8, in <module>',
            "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
            "Root Cause (first observed failure):",
        ],
    )
    crash = next(f for f in report["findings"] if f["code"] == "crash-traceback")
    assert "ValueError: bad anchor config" in crash["explanation"]


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        (
            ["RuntimeError: DataLoader worker (pid 4242) is killed by signal: Killed."],
            "host-oom-killed",
        ),
        (
            [
                "ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory (shm)."
            ],
            "host-oom-killed",
        ),
        (
            [
                "/pytorch/aten/src/ATen/native/cuda/Loss.cu:240: block: [0,0,0], thread: [5,0,0] Assertion `t >= 0 && t < n_classes` failed.",
                "RuntimeError: CUDA error: device-side assert triggered",
            ],
            "config-error",
        ),
        (["Traceback (most recent call last):", "KeyError: 'area'"], "data-error"),
        (
            [
                "Traceback (most recent call last):",
                "ModuleNotFoundError: No module named 'MultiScaleDeformableAttention'",
            ],
            "config-error",
        ),
    ],
)
def test_common_failures_are_classified(tmp_path, lines, code):
    report = _crash_log(tmp_path, lines)
    assert report["findings"][0]["code"] == code
    assert "Fix the error the exception names" not in report["findings"][0]["fix"]


@pytest.mark.parametrize(
    ("name", "job_id"),
    [
        ("slurm-123456.out", "123456"),
        ("slurm-123456_7.out", "123456_7"),
        ("train_98765.err", "98765"),
        ("dino-98765.out", "98765"),
        ("run_6.log", None),
        ("exp2_final.out", None),
    ],
)
def test_job_id_from_slurm_file_names_only(tmp_path, name, job_id):
    path = tmp_path / name
    path.write_text("x\n")
    assert JobFiles(str(tmp_path / "s"), logs=[path]).job_id == job_id


def test_job_id_from_the_log_itself(tmp_path):
    path = tmp_path / "run_6.log"
    path.write_text("SLURM_JOB_ID=4711\nStart training\n")
    assert run_check(path)[1]["run"]["job_id"] == "4711"
    other = tmp_path / "run_7.log"
    other.write_text("Start training\n")
    assert run_check(other)[1]["run"]["job_id"] is None


def test_tqdm_frames_before_the_epoch_line_keep_the_loss(tmp_path):
    frames = "\r".join(f"  {i}%|#  | {i}/100 [loss: 9.9 (9.9)]" for i in range(3000))
    line = "Epoch: [0]  [  0/10]  eta: 0:00:01  lr: 0.0001  loss: 2.2000 (2.2000)  time: 0.1"
    path = tmp_path / "a.out"
    path.write_text("Start training\n" + frames + "\r" + line + "\n")
    scan = scan_log(path)
    assert scan.epochs[0].loss_first == 2.2


def test_torchelastic_failure_block_is_a_failed_task(tmp_path):
    lines = [
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:",
        "Failures:",
        "[1]:",
        "  rank      : 1 (local_rank: 1)",
        "  exitcode  : 1 (pid: 3669031)",
        "Root Cause (first observed failure):",
        "[0]:",
        "  rank      : 0 (local_rank: 0)",
        "  exitcode  : -11 (pid: 3669030)",
    ]
    report = _crash_log(tmp_path, lines)
    task = next(f for f in report["findings"] if f["code"] == "task-failed")
    assert task["severity"] == "error" and "exitcode  : -11" in task["explanation"]


def test_a_log_ending_on_an_exception_line_is_a_crash(tmp_path):
    report = _crash_log(
        tmp_path,
        ["RuntimeError: DataLoader worker (pid 25902) is killed by signal: Segmentation fault"],
    )
    assert report["findings"][0]["code"] == "crash-traceback"
    assert "host-oom-killed" not in codes_of(report)


def test_a_caught_exception_mid_log_is_not_a_crash(tmp_path):
    path = tmp_path / "a.out"
    lines = ["Start training", "ValueError: retrying download", *["Epoch 0: loss=1.0"] * 5]
    path.write_text("\n".join(lines) + "\n")
    assert "crash-traceback" not in codes_of(run_check(path)[1])


@pytest.mark.parametrize(
    "line",
    [
        "21-05-24 02:11:29.657 - INFO: <epoch: 30, iter:   2,800, lr:1.000e-04> l_g_pix: 3.2e-03",
        "10000/10000 [==============================] - 2301s 230ms/step - loss: 2.6505",
    ],
)
def test_more_trainers_progress_lines(tmp_path, line):
    path = tmp_path / "a.out"
    path.write_text(line + "\n")
    report = run_check(path)[1]
    assert report["run"]["training"] == "seen"
    assert "The log starts mid-run" in [f["title"] for f in report["findings"]]


def test_nccl_watchdog_line_cut_after_a_progress_bar(tmp_path):
    path = tmp_path / "a.out"
    path.write_text(
        " 1%|  | 24/1752 [01:08<1:22:56,  2.88s/it][rank5]:[E602 11:17:52.185 "
        "ProcessGroupNCCL.cpp:632] [Rank 5] Watchdog caught collective operati\n"
    )
    assert run_check(path)[1]["findings"][0]["code"] == "nccl-error"


def _one(tmp_path, lines: list[str]) -> dict:
    path = tmp_path / "a.out"
    path.write_text("\n".join(lines) + "\n")
    return run_check(path)[1]


def test_other_trainers_loss_explosion(tmp_path):
    steps = [0.9, 0.5, 0.31, 0.3, 0.35, 9.0, 120.0]
    report = _one(
        tmp_path, [f"global step {i}: loss = {v} (0.3 sec/step)" for i, v in enumerate(steps)]
    )
    boom = next(f for f in report["findings"] if f["code"] == "loss-explosion")
    assert "rose to 120" in boom["explanation"] and "0.3 at" in boom["explanation"]


def test_falling_noisy_loss_is_no_explosion(tmp_path):
    steps = [5.0, 3.0, 2.0, 2.5, 1.5, 1.8, 1.2, 1.4]
    report = _one(tmp_path, [f"Epoch {i}: loss={v}" for i, v in enumerate(steps)])
    assert "loss-explosion" not in codes_of(report)


def test_unexplained_sigkill_is_probably_host_memory(tmp_path):
    report = _one(
        tmp_path,
        [
            "Epoch 0: loss=1.0",
            "[ERROR] failed (exitcode: -9) local_rank: 1 (pid: 14447) of binary:",
        ],
    )
    codes = codes_of(report)
    assert codes["host-oom-killed"] == "warning" and codes["task-failed"] == "error"


def test_sigkill_after_a_slurm_time_limit_is_not_memory(tmp_path):
    report = _one(
        tmp_path,
        [
            "Epoch 0: loss=1.0",
            "slurmstepd: error: *** JOB 5 ON n1 CANCELLED AT 2024-01-01T00:00:00 DUE TO TIME LIMIT ***",
            "Killed",
        ],
    )
    assert "host-oom-killed" not in codes_of(report)


def test_step_cancel_after_an_oom_kill_is_not_a_user_cancel(tmp_path):
    report = _one(
        tmp_path,
        [
            "slurmstepd-n1: error: Detected 1 oom-kill event(s) in StepId=9.0. Some of your processes may have been killed by the cgroup out-of-memory handler.",
            "srun: error: n1: task 0: Out Of Memory",
            "slurmstepd-n1: error: *** STEP 9.0 ON n1 CANCELLED AT 2022-05-17T17:58:10 ***",
        ],
    )
    assert (
        "cancelled" not in codes_of(report) and report["findings"][0]["code"] == "host-oom-killed"
    )


def test_root_cause_block_cut_before_its_exit_code(tmp_path):
    report = _one(
        tmp_path,
        [
            "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
            "Root Cause (first observed failure):",
            "[0]:",
            "  rank      : 0 (local_rank: 0)",
        ],
    )
    task = next(f for f in report["findings"] if f["code"] == "task-failed")
    assert "Root Cause" in task["explanation"]


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (
            "*** SIGSEGV (@0x0) received by PID 66514 (TID 0x7fc5093d5dc0) from PID 0; stack trace: ***",
            "crash-traceback",
        ),
        (
            "RuntimeError: [enforce fail at event_gpu.cc:17] error == cudaSuccess. 2 vs 0. Error at: event_gpu.cc:17: out of memory",
            "cuda-oom",
        ),
        ("ValueError:Network outputs is NAN! Stop Training", "nan-loss"),
        (
            "2017-08-20 INFO - [Epoch 64 736512/1281167][Iteration 45457] Loss is Infinity.",
            "nan-loss",
        ),
        (
            "`FileNotFoundError: Caught FileNotFoundError in DataLoader worker process 0.",
            "data-error",
        ),
    ],
)
def test_more_failures_in_their_own_words(tmp_path, line, code):
    assert _one(tmp_path, [line])["findings"][0]["code"] == code


def test_batch_script_that_could_not_start_is_an_immediate_exit(tmp_path):
    path = tmp_path / "error_2997814.err"
    path.write_text(
        "slurmstepd: error: execve(): /tmp/slurmd/job2997814/slurm_script: No such file or directory\n"
    )
    codes = codes_of(run_check(path)[1])
    assert codes["immediate-exit"] == "error" and codes["config-error"] == "error"


def test_logs_without_job_ids_stay_two_jobs_in_history(tmp_path):
    from typer.testing import CliRunner

    from tbx_doctor.cli import app

    for n in (6, 7):
        (tmp_path / f"run_{n}.log").write_text("Start training\nEpoch 0: loss=1.0\n")
    result = CliRunner().invoke(
        app, ["history", str(tmp_path / "run_6.log"), str(tmp_path / "run_7.log")]
    )
    assert result.exit_code == 0, result.output
    assert "run_6.log" in result.output and "run_7.log" in result.output


def test_nan_and_errors_after_many_progress_lines_of_one_shape(tmp_path):
    shape = "2023-05-01 10:00:00,000 - mmdet - INFO - Epoch [1][{}/1000]\tlr: 2.000e-02, memory: 6836, loss: {}"
    lines = [shape.format(i, 0.8) for i in range(50, 500, 50)]
    lines += [
        shape.format(500, "nan"),
        "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
    ]
    codes = codes_of(_one(tmp_path, lines))
    assert codes["nan-loss"] == "error" and codes["cuda-oom"] == "error"
