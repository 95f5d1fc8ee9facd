"""A real run, in-process: a few steps on a tiny synthetic set, stopped by --max-steps, resumed.

64 px images, 8 training images, batch 2: 4 optimizer steps per epoch.
"""

import json
import os
import re
import signal
from dataclasses import replace

import pytest
import torch
from tiny_run import tiny_run_config
from typer.testing import CliRunner

from tbx_doctor.cli import app as doctor_app
from tbx_train.checkpoint import load_checkpoint
from tbx_train.cli import app as train_app
from tbx_train.data import write_synthetic_tbx11k
from tbx_train.runner import run_training
from tbx_train.signals import StopRequest

ITERATION = re.compile(
    r"^Epoch: \[0\]  \[(?P<i>\d)/4\]  eta: \d+:\d\d:\d\d  lr: 0\.000200  class_error: \d+\.\d\d  "
    r"loss: \d+\.\d{4} \(\d+\.\d{4}\)(  \w+: \d+\.\d{4} \(\d+\.\d{4}\))+  "
    r"time: \d+\.\d{4}  data: \d+\.\d{4}$"
)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_synthetic_tbx11k(root, images=10, seed=1, size=64, val_fraction=0.2)
    return root


_config = tiny_run_config


def test_max_steps_then_resume_finishes_the_epoch(synth, tmp_path):
    lines: list[str] = []
    first = run_training(_config(synth, tmp_path, max_steps=3), write=lines.append)
    assert (first.exit_code, first.stop_reason, first.epochs_trained) == (0, "max_steps", [])
    assert "Training from scratch" in lines
    assert any(line.startswith("Run plan: mode=fresh source=- ") for line in lines)
    assert [ITERATION.match(x)["i"] for x in lines if ITERATION.match(x)] == ["0", "1", "2"]
    assert f"saved checkpoint {tmp_path / 'checkpoint.pth'} (epoch 0, iteration 3)" in lines[-2]
    assert re.fullmatch(r"Training time 0:0\d:\d\d", lines[-1])
    saved = load_checkpoint(tmp_path / "checkpoint.pth")
    assert (saved["epoch"], saved["next_iteration"], saved["global_step"]) == (-1, 3, 3)
    assert saved["strategy"] == {
        "batch_size": 2,
        "grad_accum": 1,
        "world_size": 1,
        "effective_batch": 2,
    }

    log = [*lines]
    lines.clear()
    second = run_training(_config(synth, tmp_path), write=lines.append)
    assert (second.exit_code, second.epochs_trained) == (0, [0])
    assert any(line.endswith("(epoch 0, iteration 3)") for line in lines if "Resuming" in line)
    assert [ITERATION.match(x)["i"] for x in lines if ITERATION.match(x)] == ["3"]
    assert any(line.startswith("Averaged stats: lr: 0.000200  class_error: ") for line in lines)
    assert any(
        line.startswith("Test:  [0/2]  eta: ") for line in lines
    )  # validation batch 1: 2 images
    assert any("IoU metric: bbox" in line for line in lines)
    assert f"Saved checkpoint: {tmp_path / 'checkpoint.pth'} (epoch 0)" in lines
    done = load_checkpoint(tmp_path / "checkpoint.pth")
    assert (done["epoch"], done["next_iteration"], done["global_step"]) == (0, 0, 4)
    assert done["completed"] is True
    (row,) = [json.loads(x) for x in (tmp_path / "log.txt").read_text().splitlines()]
    assert len(row["test_coco_eval_bbox"]) == 12 and row["epoch"] == 0
    assert {"train_loss", "train_lr", "test_loss", "n_parameters", "epoch_time"} <= row.keys()
    assert row["n_parameters"] > 1_000_000

    # The doctor reads the resumed job's log (its predecessor's beside it) as printed.
    (tmp_path / "train_tbx11k_101.out").write_text("\n".join(log) + "\n")
    (tmp_path / "train_tbx11k_102.out").write_text("\n".join(lines) + "\n")
    check = CliRunner().invoke(
        doctor_app, ["check", str(tmp_path / "train_tbx11k_102.out"), "--format", "json"]
    )
    report = json.loads(check.stdout)
    # Warnings only (the built-in profile expects TBX11K's ~20 min, loss ~2 first epoch).
    assert check.exit_code == 0, report["findings"]
    assert not [f for f in report["findings"] if f["severity"] == "error"]
    assert (report["run"]["path"], report["run"]["first_epoch"]) == ("resume", 0)

    # The run is complete: running it again is refused before any training (exit 3).
    options = ["--preset", "tiny", "--data-root", str(synth), "--output-dir", str(tmp_path)]
    again = CliRunner().invoke(train_app, ["run", *options, "--device", "cpu"])
    assert again.exit_code == 3, again.output
    assert again.output.splitlines()[-1].startswith("Run plan refused: ")
    assert "Start training" not in again.output


def test_run_without_data_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(
        train_app, ["run", "--preset", "tiny", "--output-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "give --data-root" in result.output


def test_resumed_run_ends_with_the_uninterrupted_weights(synth, tmp_path):
    """Denoising noise is seeded per micro-batch, so a mid-epoch resume redraws the same noise."""
    whole, split = tmp_path / "whole", tmp_path / "split"
    run_training(_config(synth, whole), write=lambda _line: None)
    run_training(_config(synth, split, max_steps=2), write=lambda _line: None)
    run_training(_config(synth, split), write=lambda _line: None)
    reference = load_checkpoint(whole / "checkpoint.pth")["model"]
    resumed = load_checkpoint(split / "checkpoint.pth")["model"]
    differ = [k for k, v in reference.items() if not torch.equal(resumed[k], v)]
    assert not differ, f"{len(differ)} of {len(reference)} tensors differ, e.g. {differ[:3]}"


def test_resume_across_a_strategy_change_logs_the_change(synth, tmp_path):
    run_training(_config(synth, tmp_path, max_steps=1), write=lambda _line: None)
    lines: list[str] = []
    config = _config(synth, tmp_path, max_steps=1, allow_strategy_change=True)
    config = replace(config, train=replace(config.train, batch_size=1, grad_accum=2))
    outcome = run_training(config, write=lines.append)
    assert outcome.stop_reason == "max_steps"
    start = lines.index("Start training")
    decision, change, plan = lines[start - 3 : start]
    assert decision.startswith("Resuming from checkpoint: ") and decision.endswith("iteration 1)")
    accepted = "Strategy change accepted (--allow-strategy-change): batch_size 2 -> 1"
    assert change.startswith(accepted)
    assert plan.startswith("Run plan: mode=resume ") and " batch_size=1 grad_accum=2 " in plan


def _run_stopped(config, lines):
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGUSR1)  # SLURM's warning, during start-up
        return run_training(config, write=lines.append, stop=stop)


def test_stop_during_start_up_saves_after_the_first_step_in_this_run(synth, tmp_path):
    """The chain's next job resumes from this job's run folder, so there must be a checkpoint."""
    lines: list[str] = []
    outcome = _run_stopped(_config(synth, tmp_path), lines)
    assert (outcome.exit_code, outcome.stop_reason) == (75, "stop_requested")
    assert [ITERATION.match(x)["i"] for x in lines if ITERATION.match(x)] == ["0"]
    path = tmp_path / "checkpoint.pth"
    assert lines[-2] == (
        f"Interrupted by SIGUSR1: saved checkpoint {path} (epoch 0, iteration 1); exiting with "
        "code 75 for requeue"
    )
    saved = load_checkpoint(path)
    assert (saved["epoch"], saved["next_iteration"], saved["global_step"]) == (-1, 1, 1)
