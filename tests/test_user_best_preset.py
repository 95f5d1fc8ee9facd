"""The `tbx11k-user-best` preset against the user's best run, field by field.

The run's config_args_all.json (copied from real-logs/dino_tbx11k/outputs/tbx11k_run_39627174
into fixtures/user_best_run/) is compared through the one mapping table of
tbx_train.official_args; the fields outside it are listed and must be the known run-local ones.
"""

import json
from pathlib import Path

import pytest

from tbx_train.config_files import config_dict, run_preset
from tbx_train.official_args import FIXED, NO_EFFECT, OFFICIAL_KEYS, official_values, unmapped

BEST = Path(__file__).resolve().parents[1] / "fixtures/user_best_run/config_args_all.json"
RUN_LOCAL = {  # paths, launcher and run-mode options: given on the command line instead
    "coco_panoptic_path", "coco_path", "config_file", "dataset_file", "debug", "device",
    "dist_backend", "dist_url", "distributed", "eval", "find_unused_params", "finetune_ignore",
    "gpu", "local_rank", "note", "options", "output_dir", "pretrain_model_path", "rank",
    "remove_difficult", "resume", "save_log", "save_results", "start_epoch", "test",
}  # fmt: skip


@pytest.fixture(scope="module")
def best_args():
    return json.loads(BEST.read_text())


def _resolved(name: str) -> dict[str, object]:
    plain = config_dict(run_preset(name))
    return {f"{s}.{f}": v for s in ("model", "data", "train") for f, v in plain[s].items()}


def test_every_shared_field_equals_the_best_run(best_args):
    ours = _resolved("tbx11k-user-best")
    theirs = official_values(best_args)
    assert set(theirs) == set(OFFICIAL_KEYS)  # every mapped option is in their file
    differences = {k: (ours[k], v) for k, v in theirs.items() if ours[k] != v}
    assert differences == {}
    assert (ours["train.epochs"], ours["train.lr_drop"], ours["model.num_queries"]) == (50, 30, 300)


def test_fixed_and_unused_options_hold_and_the_rest_is_listed(best_args):
    fixed = {k: best_args[k] for k in FIXED}
    assert fixed == FIXED  # tbx-train's model has only these forms
    assert set(NO_EFFECT) <= set(best_args)
    rest = unmapped(best_args)
    print("not compared (run-local):", ", ".join(rest))
    assert set(rest) == RUN_LOCAL


def test_the_official_preset_differs_from_the_best_run_where_the_issue_says():
    official, best = _resolved("tbx11k-1gpu"), _resolved("tbx11k-user-best")
    changed = {k for k in best if best[k] != official[k]}
    assert changed == {
        "model.num_queries", "model.dropout", "model.focal_alpha", "model.dn_box_noise_scale",
        "data.train_sizes", "data.max_size", "data.num_workers", "train.epochs",
        "train.lr_drop", "train.ema", "train.ema_decay", "train.checkpoint_interval",
    }  # fmt: skip
