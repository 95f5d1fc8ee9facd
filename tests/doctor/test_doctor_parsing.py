# ruff: noqa: E501  (the table quotes real log lines verbatim; wrapping them would hide that)
"""Streaming readers and line classification: wordings, encodings, compression, line numbers."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tbx_doctor.reading.logscan import scan_log
from tbx_doctor.reading.run_dir import parse_duration
from tbx_doctor.reading.stream import ReadStatus, iter_chunks

WORDINGS = [
    (
        "slurmstepd-vm: error: *** JOB 3 ON vm CANCELLED AT 2026-11-25T17:08:50 DUE TO TIME LIMIT ***",
        "time_limit",
    ),
    (
        "[2025-11-16T21:36:29.056] error: *** JOB 39430799 ON sg033 CANCELLED AT 2025-11-16T21:36:29 DUE TO TIME LIMIT ***",
        "time_limit",
    ),
    (
        "slurmstepd: *** JOB 1234 CANCELLED AT 2017-05-02T10:00:00 DUE TO TIME LIMIT on n01 ***",
        "time_limit",
    ),
    (
        "slurmstepd: error: *** STEP 1234.0 ON n01 CANCELLED AT 2021-01-01T00:00:00 DUE TO TIME LIMIT ***",
        "time_limit",
    ),
    ("slurmstepd-vm: error: *** JOB 5 ON vm CANCELLED AT 2026-11-25T17:07:47 ***", "cancelled"),
    (
        "[2025-11-18T11:46:13.501] error: *** JOB 39685032 ON sg042 CANCELLED AT 2025-11-18T11:46:13 DUE to SIGNAL Terminated ***",
        "cancelled",
    ),
    (
        "slurmstepd: error: *** JOB 77 ON n1 CANCELLED AT 2024-01-01T00:00:00 DUE TO PREEMPTION ***",
        "preempted",
    ),
    (
        "slurmstepd: error: *** JOB 77 ON n1 CANCELLED AT 2024-01-01T00:00:00 DUE TO JOB REQUEUE ***",
        "preempted",
    ),
    (
        "slurmstepd: error: *** JOB 77 ON n1 CANCELLED AT 2024-01-01T00:00:00 DUE TO NODE FAILURE ***",
        "node_fail",
    ),
    ("srun: error: Node failure on n12", "node_fail"),
    (
        "slurmstepd-vm: error: Detected 1 oom-kill event(s) in StepId=8.batch. Some of your processes may have been killed by the cgroup out-of-memory handler.",
        "host_oom",
    ),
    (
        "slurmstepd-vm: error: StepId=8.batch exceeded memory limit (646021120 > 104857600), being killed",
        "host_oom",
    ),
    ("slurmstepd-vm: error: Exceeded job memory limit", "host_oom"),
    ("srun: error: n1: task 0: Out Of Memory", "host_oom"),
    ("srun: error: vm: task 0: Exited with exit code 7", "task_failed"),
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB", "cuda_oom"),
    ("RuntimeError: CUDA error: out of memory", "cuda_oom"),
    (
        "RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
        "cuda_oom",
    ),
    (
        "[rank1]:[E ProcessGroupNCCL.cpp:563] [Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=5)",
        "nccl_error",
    ),
    (
        "torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/NCCLUtils.hpp:219, unhandled system error",
        "nccl_error",
    ),
    ("RuntimeError: CUDA error: device-side assert triggered", "device_assert"),
    ("    assert (boxes1[:, 2:] >= boxes1[:, :2]).all()", "box_assert"),
    ("Loss is nan, stopping training", "nonfinite"),
    (
        "\tsize mismatch for class_embed.0.weight: copying a param with shape torch.Size([91, 256])",
        "size_mismatch",
    ),
    ("main.py: error: unrecognized arguments: --bogus", "config_error"),
    (
        "FileNotFoundError: [Errno 2] No such file or directory: '/d/imgs/sick/s0001.png'",
        "data_error",
    ),
    ("Training time 1 day, 2:03:04", "training_time"),
    ("\x1b[32mEpoch: [3]  [ 10/100]  eta: 0:00:01  lr: 0.0001  loss: 1.0 (1.0)", None),
]
BENIGN = [
    "sg009:4077539:4077576 [0] NCCL INFO Channel 00/64 : 0",
    "[W1116 13:36:21.503225013 Utils.hpp:137] Warning: Environment variable "
    "NCCL_ASYNC_ERROR_HANDLING is deprecated; use TORCH_NCCL_ASYNC_ERROR_HANDLING instead",
    "[rank0]:[W1116 13:36:21.512 ProcessGroupNCCL.cpp:5072] Guessing device ID based on global "
    "rank.",
    "  warnings.warn(  # warn only once",
    "/x/engine.py:46: FutureWarning: `torch.cuda.amp.autocast(args...)` is deprecated.",
]


@pytest.mark.parametrize(("text", "kind"), WORDINGS)
def test_wordings(tmp_path, text, kind):
    path = tmp_path / "a.out"
    path.write_text("first line\n" + text + "\n")
    scan = scan_log(path)
    if kind is None:  # an ANSI-coloured iteration line still counts as training
        assert scan.epochs[3].lines == 1 and scan.epochs[3].last.line == 2
        return
    assert kind in scan.events, scan.events.keys()
    assert scan.events[kind].first[0].line == 2


def test_benign_lines_are_not_events(tmp_path):
    path = tmp_path / "a.err"
    path.write_text("\n".join(BENIGN) + "\n")
    assert scan_log(path).events == {}


def test_line_numbers_crlf_and_invalid_utf8(tmp_path):
    path = tmp_path / "a.out"
    path.write_bytes(b"a\r\nb\xff\xfe\r\nStart training\r\n\r\nTraining time 0:01:00\r\n")
    scan = scan_log(path)
    assert scan.lines == 5 and scan.replaced_lines == 0
    assert (
        scan.first("start_training").line == 3
        and scan.first("training_time").text == "Training time 0:01:00"
    )
    bad = tmp_path / "b.out"
    bad.write_bytes(b"Job ID: 12\xff\nx\n")
    assert (
        scan_log(bad).first("job_id").text == "Job ID: 12\ufffd"
        and scan_log(bad).replaced_lines == 1
    )


def test_gzip_members_and_truncation(tmp_path):
    lines = b"".join(b"line %d\n" % i for i in range(20000))
    path = tmp_path / "a.out.gz"
    path.write_bytes(gzip.compress(lines[:50000]) + gzip.compress(lines[50000:]))
    status = ReadStatus(path)
    data = b"".join(buf[s:e] for buf, s, e in iter_chunks(path, status, size=4096))
    assert data == lines and not status.truncated
    blob = gzip.compress(lines)
    path.write_bytes(blob[: len(blob) // 2])
    status = ReadStatus(path)
    data = b"".join(buf[s:e] for buf, s, e in iter_chunks(path, status, size=4096))
    assert status.truncated and lines.startswith(data) and len(data) > len(lines) // 3


def test_chunk_boundaries_do_not_split_lines(tmp_path):
    text = "".join(
        f"Epoch: [0]  [{i}/500]  eta: 0:00:01  lr: 0.1  loss: 1.0 ({i / 100:.4f})\n"
        for i in range(500)
    )
    path = tmp_path / "a.out"
    path.write_text(text)
    status = ReadStatus(path)
    chunks = [buf[s:e] for buf, s, e in iter_chunks(path, status, size=777)]
    assert b"".join(chunks) == text.encode() and all(c.endswith(b"\n") for c in chunks)
    epoch = scan_log(Path(path)).epochs[0]
    assert (epoch.lines, epoch.first_iter, epoch.last_iter, epoch.total) == (500, 0, 499, 500)
    assert epoch.loss_last == 4.99 and epoch.last.line == 500


def test_parse_duration_with_days():
    assert parse_duration("1 day, 2:03:04") == 93784
    assert parse_duration("0:19:12") == 1152
    assert parse_duration("garbage") is None


def test_gzip_bomb_line_is_read_in_bounded_blocks(tmp_path):
    path = tmp_path / "a.out.gz"
    path.write_bytes(gzip.compress(b"x" * (40 * 1024 * 1024) + b"\nStart training\n"))
    status = ReadStatus(path)
    sizes = [len(buf) for buf, _, _ in iter_chunks(path, status, size=1 << 20)]
    assert scan_log(path).first("start_training").line == 2
    assert max(sizes) <= 17 * 1024 * 1024 and not status.truncated  # the line is capped


def test_torchrun_sigkill_without_memory_message_is_a_failed_task(tmp_path):
    from doctor_helpers import codes_of, run_check

    path = tmp_path / "train_8.out"
    path.write_text(
        "Start training\n[ERROR] failed (exitcode: -9) local_rank: 0 (pid: 77)\n"
        "  exitcode  : -9 (pid: 77)\n"
    )
    _, report = run_check(path)
    assert codes_of(report).get("task-failed") == "error"
    assert "incomplete-log" not in codes_of(report)


TERMS = "  loss_bbox_dn: 0.0100 (0.0200)  loss_giou_dn: 0.0300 (0.0400)" * 50  # a 4 KB line


def _dino_line(i: int, total: str, avg: str, before: str = "class_error: 0.00") -> str:
    head = f"Epoch: [2]  [{i:4d}/1000]  eta: 0:10:00  lr: 0.000100  {before}"
    return f"{head}  loss: {total} ({avg}){TERMS}"


@pytest.mark.parametrize(
    ("bad", "before"),
    [
        (("nan", "nan"), "class_error: 0.00"),  # the total and its average
        (("0.5000", "nan"), "class_error: 0.00"),  # the average only (one bad step earlier)
        (("inf", "1.0000"), "class_error: 0.00"),
        (("-inf", "-inf"), "class_error: 0.00"),
        (("0.5000", "0.6000"), "grad_norm: inf (inf)"),  # Deformable DETR: before the total
    ],
)
def test_iteration_line_nonfinite_anywhere_before_the_total_loss(tmp_path, bad, before):
    """The hot path's NaN test on lines of the current epoch: the first bad line is quoted
    whether the NaN or inf is in the total loss, its average, or a field printed before it."""
    lines = [_dino_line(i, "0.5000", "0.6000", before.replace("inf", "1.0")) for i in range(50)]
    lines[37] = _dino_line(37, *bad, before)
    path = tmp_path / "a.out"
    path.write_text("\n".join(lines) + "\n")
    scan = scan_log(path)
    assert scan.epochs[2].lines == 50
    assert scan.events["nonfinite"].first[0].line == 38


def test_iteration_lines_with_dn_terms_are_not_nonfinite(tmp_path):
    path = tmp_path / "a.out"
    path.write_text("\n".join(_dino_line(i, "0.5000", "0.6000") for i in range(50)) + "\n")
    assert "nonfinite" not in scan_log(path).events
