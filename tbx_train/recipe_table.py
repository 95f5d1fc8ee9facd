"""The README's recipe tables, made from the resolved configs (`python -m tbx_train.recipe_table`).

`comparison_table()`: official DINO (the `dino-4scale-r50` preset) / the user's best run (its
config_args_all.json, read through tbx_train.official_args) / tbx-train's `tbx11k-user-best` and
`tbx11k-1gpu` presets. `preset_table()`: every preset. tests/test_readme_tables.py checks that the
README holds exactly these tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tbx_train.config import RunConfig
from tbx_train.config_files import build_config, coerce, preset_names, run_preset
from tbx_train.official_args import official_values

USER_BEST_ARGS = Path(__file__).resolve().parents[1] / "fixtures/user_best_run/config_args_all.json"


def _sizes(sizes: tuple[int, ...]) -> str:
    return f"{min(sizes)}-{max(sizes)}" if len(sizes) > 1 else str(sizes[0])


def _schedule(c: RunConfig) -> str:
    kind = "MultiStepLR" if c.train.lr_drop_epochs else f"StepLR({c.train.lr_drop})"
    drops = ", ".join(str(e) for e in c.train.lr_drops())
    return f"{c.train.epochs} epochs, {kind}: " + (f"drops at {drops}" if drops else "no drop")


def _knobs(c: RunConfig) -> str:
    m = c.model
    return (
        f"{m.num_queries} queries, dropout {m.dropout:g}, focal alpha {m.focal_alpha:g} (loss "
        f"and matcher), dn box noise {m.dn_box_noise_scale:g}, "
        f"label noise {m.dn_label_noise_ratio:g}"
    )


def _augmentation(c: RunConfig) -> str:
    d = c.data
    crop = (
        f"; or resize {list(d.crop_resize_sizes)} -> crop {d.crop_min}-{d.crop_max} -> resize"
        f" (p {d.crop_prob:g})"
        if d.crop_prob > 0
        else "; no crop branch"
    )
    return f"flip; resize {_sizes(d.train_sizes)}, max {d.max_size}{crop}"


def _groups(c: RunConfig) -> str:
    t = c.train
    if t.param_dict_type == "default":
        return f"2: backbone {t.lr_backbone:g}, rest (sampling offsets too) {t.lr:g}"
    return f"3: backbone {t.lr_backbone:g}, offsets {t.lr * t.lr_linear_proj_mult:g}, rest {t.lr:g}"


def _ema(c: RunConfig) -> str:
    if not c.train.ema:
        return "off (`--ema`: evaluated every epoch, best-EMA checkpoint)"
    return f"on, {c.train.ema_decay:g}; evaluated every epoch, checkpoint_best_ema.pth"


def _batch(c: RunConfig) -> str:
    t = c.train
    gpus = t.world_size or "N"
    strategy = f"{t.batch_size}/GPU x accum {t.grad_accum} x {gpus} GPU"
    return f"{strategy}; validation batch {t.val_batch_size}"


def _backbone(c: RunConfig) -> str:
    if not c.model.freeze_stem:
        return f"{c.model.backbone}, trained from scratch (stem included)"
    return f"{c.model.backbone}, stem+layer1 frozen (needs ImageNet or checkpoint weights)"


ROWS: dict[str, Callable[[RunConfig], str]] = {
    "schedule": _schedule,
    "model knobs": _knobs,
    "train augmentation": _augmentation,
    "evaluation size": lambda c: f"shorter side {c.data.eval_size()}",
    "param groups": _groups,
    "precision": lambda c: f"train {'fp32' if c.train.amp == 'off' else c.train.amp}; eval fp32",
    "EMA": _ema,
    "batch": _batch,
    "fresh-run backbone": _backbone,
}


def user_best_config() -> RunConfig:
    """The user's best run, built from its config_args_all.json alone."""
    args = json.loads(USER_BEST_ARGS.read_text())
    values = {k: coerce(k, v, "config_args_all.json") for k, v in official_values(args).items()}
    values["model.freeze_stem"] = True
    return build_config(values, "user's best run")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def comparison_table() -> str:
    """official / user's best / tbx-train presets, one row per recipe item."""
    columns = [
        run_preset("dino-4scale-r50"),
        user_best_config(),
        run_preset("tbx11k-user-best"),
        run_preset("tbx11k-1gpu"),
    ]
    header = ["item", "official DINO", "the user's best run", "`tbx11k-user-best`", "`tbx11k-1gpu`"]
    return _table(header, [[name, *(row(c) for c in columns)] for name, row in ROWS.items()])


def preset_table() -> str:
    """One line per preset: model, sizes, strategy, schedule, rates."""
    rows = []
    for name in preset_names():
        c = run_preset(name)
        m, t = c.model, c.train
        rows.append([
            f"`{name}`",
            f"{m.backbone}, {m.enc_layers}+{m.dec_layers} layers, {m.num_queries} queries",
            f"{m.num_classes}", f"{_sizes(c.data.train_sizes)} (eval {c.data.eval_size()})",
            _batch(c).split(";")[0], _schedule(c), f"{t.lr:g} / {t.lr_backbone:g}",
            "on" if t.ema else "off",
        ])  # fmt: skip
    header = [
        "preset",
        "model",
        "classes",
        "image side",
        "batch",
        "schedule",
        "lr / backbone lr",
        "EMA",
    ]
    return _table(header, rows)


if __name__ == "__main__":
    print(preset_table(), comparison_table(), sep="\n\n")
