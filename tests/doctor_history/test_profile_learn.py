"""`tbx-doctor profile learn`: ranges from healthy runs, as TOML that `check --profile` reads."""

from __future__ import annotations

import pytest
from history_helpers import REPO, real_logs_dir, tbx_log
from typer.testing import CliRunner

from tbx_doctor.cli import app
from tbx_doctor.profile.expectations import load_profile


def _learn(tmp_path, *paths) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["profile", "learn", *map(str, paths)])
    (tmp_path / "learned.toml").write_text(result.stdout)
    return result.exit_code, result.stdout


def test_ranges_from_small_runs_round_trip_through_load_profile(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "t_200.out").write_text(tbx_log("200", None, range(0, 2)))
    code, text = _learn(tmp_path, logs)
    assert code == 0, text
    profile = load_profile(tmp_path / "learned.toml")
    # Epoch 0: running mean 2.0, 20 min, AP 0.03; the margin is 25 %.
    assert profile.first_epoch_loss == (1.5, 2.5)
    assert profile.first_epoch_minutes == (15.0, 25.0)
    assert profile.first_epoch_ap == (0.0225, 0.0375)
    assert profile.loss_tolerance == 0.0
    assert profile.iterations_per_epoch == (20.0, 20.0)
    assert "[job]\niterations_per_epoch = [20, 20]  # observed 20 (exact:" in text


@pytest.mark.real_logs
def test_real_logs_learn_and_check_with_the_profile(tmp_path):
    root = real_logs_dir()
    code, text = _learn(tmp_path, root, *sorted((root / "outputs").iterdir()))
    assert code == 0, text
    profile = load_profile(tmp_path / "learned.toml")
    lo, hi = profile.first_epoch_loss
    # Epoch 0 of the pretrained start that learned: 3.18 (39627174); the collapsed chain
    # (39430799 ->) is left out of what a healthy run looks like.
    assert lo < 3.179 < hi and "(job 39627174)" in text
    assert "# left out: job 39430799 (its chain: ap-collapsed" in text
    assert profile.bands is not None and profile.bands.last_epoch == 48
    result = CliRunner().invoke(
        app,
        ["check", str(root / "logs" / "train_tbx11k_39685032.out.gz"), "--profile",
         str(tmp_path / "learned.toml")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_only_failed_runs_is_exit_2():
    log = REPO / "fixtures" / "incident" / "train_tbx11k_39581627.out"
    result = CliRunner().invoke(app, ["profile", "learn", str(log)])
    assert result.exit_code == 2 and "no healthy training run" in result.output
