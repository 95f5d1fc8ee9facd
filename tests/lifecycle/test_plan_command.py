"""`tbx-train plan` in-process: report + Run plan line (0), refusal (3), bad input (2)."""

from __future__ import annotations

import inspect

from typer.testing import CliRunner

from tbx_train.cli import app
from tbx_train.commands import run
from tbx_train.commands.plan import command

from .conftest import tbx_payload

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None):
    # The data root is validated like `run` does, but the plan never opens it.
    return runner.invoke(app, ["plan", "--data-root", "data", *args], env=env or {})


def test_fresh_plan_prints_report_and_line(tmp_path):
    weights = tmp_path / "resnet50.pth"
    weights.touch()
    args = ("--preset", "tbx11k-1gpu", "--output-dir", str(tmp_path / "run"))
    result = invoke(*args, "--backbone-weights", str(weights))
    assert result.exit_code == 0, result.output
    assert "Verdict:     OK, Training from scratch" in result.output
    assert result.output.splitlines()[-1] == (
        "Run plan: mode=fresh source=- source_epoch=- start_epoch=0 epochs=12 epochs_to_run=12 "
        "batch_size=1 grad_accum=2 world_size=1 effective_batch=2"
    )


def test_incident_is_refused_with_exit_3(write_ckpt, tmp_path):
    path = write_ckpt("run/checkpoint.pth", tbx_payload(epoch=49, epochs_planned=50))
    result = invoke("--preset", "tbx11k-1gpu", "--output-dir", str(tmp_path / "run"),
                    "--epochs", "50")  # fmt: skip
    assert result.exit_code == 3
    assert result.output.startswith(f"Run plan refused: checkpoint {path} finished epoch 49")
    assert "Run plan:" not in result.output.replace("Run plan refused", "")


def test_world_size_comes_from_the_launcher_environment(write_ckpt, tmp_path):
    write_ckpt("run/checkpoint.pth", tbx_payload(epoch=2, grad_accum=1, world_size=2))
    args = ("--preset", "tbx11k", "--batch-size", "1", "--output-dir", str(tmp_path / "run"))
    assert invoke(*args, env={"SLURM_NTASKS": "2"}).exit_code == 0
    refused = invoke(*args, env={})
    assert refused.exit_code == 3 and "world_size=1 (effective batch 1)" in refused.output


def test_bad_options_exit_2(tmp_path):
    result = invoke("--preset", "nope", "--output-dir", str(tmp_path))
    assert result.exit_code == 2 and "unknown run preset 'nope'" in result.output
    assert invoke("--epochs", "0", "--output-dir", str(tmp_path)).exit_code == 2


def test_unreadable_explicit_resume_exits_2(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"junk")
    result = invoke("--resume", str(bad), "--output-dir", str(tmp_path / "run"))
    assert result.exit_code == 2 and "truncated, unreadable" in result.output


def test_plan_takes_exactly_the_run_options():
    assert inspect.signature(command).parameters == inspect.signature(run.command).parameters


def test_fresh_plan_without_backbone_weights_is_refused(tmp_path):
    result = invoke("--preset", "tbx11k-1gpu", "--output-dir", str(tmp_path / "run"))
    assert result.exit_code == 3 and "--backbone-weights FILE" in result.output
    scratch = invoke("--preset", "tbx11k", "--output-dir", str(tmp_path / "run"),
                     "--set", "model.freeze_stem=false", "--epochs", "50")  # fmt: skip
    assert scratch.exit_code == 0, scratch.output
    assert "Warning:     StepLR(lr_drop=11) over 50 epochs" in scratch.output


def test_user_best_preset_with_50_epochs_drops_once(tmp_path):
    result = invoke("--preset", "tbx11k-user-best", "--output-dir", str(tmp_path / "run"),
                    "--set", "model.freeze_stem=false", "--epochs", "50")  # fmt: skip
    assert result.exit_code == 0 and "Warning" not in result.output, result.output
