"""EMA weights evaluated every epoch, checkpoint_best_ema.pth, and the best AP kept across the
jobs of a run (a resumed job compares with the earlier jobs' epochs, not from scratch)."""

import json

from tiny_run import tiny_run_config

from tbx_train.checkpoint import load_checkpoint
from tbx_train.data import write_synthetic_tbx11k
from tbx_train.runner import run_training


def test_ema_is_evaluated_and_the_best_survives_a_resume(tmp_path):
    root = tmp_path / "synth"
    write_synthetic_tbx11k(root, images=8, seed=1, size=64, val_fraction=0.25)  # 3 val boxes
    run = tmp_path / "run"
    lines: list[str] = []
    # Job 1: epoch 0. EMA decay 0.5 so that the EMA weights differ visibly from the model's.
    first = tiny_run_config(root, run, ema=True, ema_decay=0.5, epochs=1)
    assert run_training(first, write=lines.append).exit_code == 0
    assert sum(line.startswith("Test: Total time") for line in lines) == 2  # model and EMA
    # Job 2: the same run resumed for epoch 1.
    second = tiny_run_config(root, run, ema=True, ema_decay=0.5, epochs=2)
    assert run_training(second, write=lines.append).exit_code == 0

    records = [json.loads(line) for line in (run / "log.txt").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1]
    ap = [r["test_coco_eval_bbox"][0] for r in records]
    ema_ap = [r["ema_test_coco_eval_bbox"][0] for r in records]
    # The EMA pass scores other weights than the model's: its losses differ.
    assert all(r["ema_test_loss"] != r["test_loss"] for r in records)
    latest = load_checkpoint(run / "checkpoint.pth")["metrics"]
    assert latest["best_AP"] == max(ap) and latest["best_ema_AP"] == max(ema_ap)
    # The best files hold the first epoch that reached the best (ties keep the earlier one).
    assert load_checkpoint(run / "checkpoint_best.pth")["epoch"] == ap.index(max(ap))
    assert load_checkpoint(run / "checkpoint_best_ema.pth")["epoch"] == ema_ap.index(max(ema_ap))
    assert (run / "config.toml").is_file() and (run / "config_resolved.json").is_file()
