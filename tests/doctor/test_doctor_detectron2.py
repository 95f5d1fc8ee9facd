# ruff: noqa: E501  (detectron2's lines are quoted whole; wrapping them would hide their shape)
"""detectron2 / detrex logs: start, iteration progress, total loss (NaN too), training time,
the checkpoint loading line, and what they mean for the path the run took."""

from __future__ import annotations

import pytest
from doctor_helpers import codes_of, run_check
from doctor_logtext import write_log

from tbx_doctor.reading.logscan import ITERATIONS_ONLY, scan_log

GREEN, RESET = "\x1b[32m", "\x1b[0m"


def _events(i: int, loss: str = "1.234") -> str:
    return (
        f"[11/18 10:{17 + i // 100:02d}:09 d2.utils.events]:  eta: 1:02:03  iter: {i}  "
        f"total_loss: {loss}  loss_cls: 0.5123  loss_box_reg: 0.4012  time: 0.4012  "
        "last_time: 0.3998  data_time: 0.0123  last_data_time: 0.0101  lr: 0.0001  max_mem: 5000M"
    )


def d2_log(
    start_iter: int = 0, iters: range = range(19, 400, 20), loss=None, end=True
) -> list[str]:
    """A detectron2 DefaultTrainer log (coloured prefixes as its logger writes them)."""
    lines = [
        "Command Line Args: Namespace(config_file='configs/COCO-Detection/retinanet_R_50_FPN_1x.yaml', resume=True)",
        f"{GREEN}[11/18 10:16:58 fvcore.common.checkpoint]: {RESET}[Checkpointer] Loading from "
        "/scratch/u/out/model_0004999.pth ...",
        f"{GREEN}[11/18 10:17:00 d2.engine.train_loop]: {RESET}Starting training from iteration {start_iter}",
    ]
    lines += [_events(i, loss(i) if loss else "1.234") for i in iters]
    if end:
        lines += [
            "[11/18 12:17:09 d2.engine.hooks]: Overall training speed: 398 iterations in 0:02:39 (0.4000 s / it)",
            "[11/18 12:17:09 d2.engine.hooks]: Total training time: 0:03:04 (0:00:25 on hooks)",
            # COCOEvaluator: pycocotools' summary (printed) then its own table (percent).
            " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.381",
            "[11/18 12:17:10 d2.evaluation.coco_evaluation]: Evaluation results for bbox: ",
            "|   AP   |  AP50  |  AP75  |  APs   |  APm   |  APl   |",
            "|:------:|:------:|:------:|:------:|:------:|:------:|",
            "| 38.123 | 58.456 | 41.234 | 21.345 | 41.567 | 49.789 |",
        ]
    return lines


def test_scan_folds_d2_iterations_into_progress(tmp_path):
    scan = scan_log(write_log(tmp_path, "d2_1.out", d2_log(start_iter=0)))
    progress = scan.epochs[ITERATIONS_ONLY]
    assert (progress.first_iter, progress.last_iter, progress.lines) == (19, 399, 20)
    assert progress.loss_first == progress.loss_last == 1.234
    assert progress.last is not None and progress.last.line == 23
    assert [line.line for line in scan.get("start_training")] == [3]
    assert [line.line for line in scan.get("training_time")] == [25]
    assert [line.line for line in scan.get("ckpt_loading")] == [2]
    assert scan.get("ckpt_loading")[0].text.startswith("[11/18 10:16:58 fvcore")  # ANSI removed
    assert scan.get("nonfinite") == []


def test_fresh_start_from_initial_weights_is_pretrained_and_healthy(tmp_path):
    rc, report = run_check(write_log(tmp_path, "d2_1.out", d2_log(start_iter=0)))
    assert rc == 0 and report["verdict"] == "healthy", report
    run = report["run"]
    assert (run["path"], run["path_source"]) == ("pretrained", "/scratch/u/out/model_0004999.pth")
    assert (run["last_iteration"], run["training_time_seconds"]) == (399, 184.0)
    assert run["first_epoch"] is None and run["epochs"] == []
    assert run["eval_ap"] == 0.381 and run["eval_only"] is False
    assert not {"zero-epochs", "immediate-exit", "incomplete-log"} & set(codes_of(report))
    start = report["checklist"][1]
    assert start["status"] == "pass" and start["evidence"].endswith(": " + _events(19)[:60])


def test_start_after_iteration_zero_is_a_resume(tmp_path):
    log = write_log(tmp_path, "d2_2.out", d2_log(start_iter=5000, iters=range(5019, 5400, 20)))
    rc, report = run_check(log, "--expect", "resume")
    run = report["run"]
    assert rc == 0, report
    assert (run["path"], run["path_source"]) == ("resume", "/scratch/u/out/model_0004999.pth")
    assert run["last_iteration"] == 5399
    assert "resumed-from-checkpoint" in codes_of(report)
    assert "unexpected-resume" not in codes_of(report)
    _, fresh = run_check(log, "--expect", "fresh")
    assert "unexpected-resume" in codes_of(fresh)


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_nonfinite_total_loss_is_nan_loss(tmp_path, bad):
    log = write_log(
        tmp_path, "d2_3.out", d2_log(loss=lambda i: bad if i >= 199 else "1.234", end=False)
    )
    rc, report = run_check(log)
    assert rc == 1 and codes_of(report)["nan-loss"] == "error"
    finding = next(f for f in report["findings"] if f["code"] == "nan-loss")
    assert finding["evidence"][0]["line"] == 3 + 10  # iteration 199 is the 10th metrics line
    assert f"total_loss: {bad}" in finding["evidence"][0]["text"]


def test_floating_point_error_traceback_is_nan_loss(tmp_path):
    lines = [
        *d2_log(end=False),
        "Traceback (most recent call last):",
        '  File "tools/train_net.py", line 160, in <module>',
        "FloatingPointError: Loss became infinite or NaN at iteration=412!",
    ]
    _, report = run_check(write_log(tmp_path, "d2_4.out", lines))
    assert {"nan-loss", "crash-traceback"} <= set(codes_of(report))


def test_cut_log_reports_the_iteration_reached(tmp_path):
    lines = [
        *d2_log(end=False),
        "slurmstepd: error: *** JOB 4242 ON n01 CANCELLED AT 2026-11-25T17:08:50 DUE TO TIME LIMIT ***",
    ]
    _, report = run_check(write_log(tmp_path, "d2_4242.out", lines))
    finding = next(f for f in report["findings"] if f["code"] == "time-limit")
    assert "The job was at iteration 399;" in finding["explanation"]


def test_zero_iterations_after_start_is_caught(tmp_path):
    lines = d2_log(start_iter=90000, iters=range(0))  # resumed from the final checkpoint
    rc, report = run_check(write_log(tmp_path, "d2_5.out", lines))
    assert rc == 1 and "zero-epochs" in codes_of(report)
    assert report["run"]["last_iteration"] is None


def test_prefixed_resume_line_names_the_source(tmp_path):
    lines = d2_log(start_iter=10000, iters=range(10019, 10100, 20))
    lines[1] = (
        f"{GREEN}[11/18 10:16:58 train_net]: {RESET}Resuming from checkpoint: /x/model_0009999.pth"
    )
    _, report = run_check(write_log(tmp_path, "d2_6.out", lines))
    assert (report["run"]["path"], report["run"]["path_source"]) == (
        "resume",
        "/x/model_0009999.pth",
    )
