"""The official DINO `args` (config_args_all.json, a checkpoint's `args` Namespace) in tbx-train
terms: one table maps each config key to the official option of the same meaning.

Used to compare a preset with a real run's config, to build the model of an official checkpoint
(`eval`, `--resume`), and to name the differences between such a checkpoint and a run's config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# tbx-train key -> (official arg, converter from the official value). The converter gets the
# whole args mapping, for the fields whose meaning spans two options.
Reader = Callable[[Mapping[str, Any]], Any]


def _arg(name: str, convert: Callable[[Any], Any] = lambda v: v) -> tuple[str, Reader]:
    return name, lambda args: convert(args[name])


def _drop_list(args: Mapping[str, Any]) -> list[int]:
    # Official: lr_drop_list applies only with multi_step_lr; otherwise StepLR(lr_drop) runs.
    return list(args["lr_drop_list"]) if args.get("multi_step_lr") else []


# Options with the same name and meaning in both.
SAME_MODEL_OPTIONS = [
    "num_classes",
    "dn_labelbook_size",
    "backbone",
    "hidden_dim",
    "nheads",
    "dim_feedforward",
    "enc_layers",
    "dec_layers",
    "num_queries",
    "num_feature_levels",
    "enc_n_points",
    "dec_n_points",
    "dropout",
    "dn_number",
    "dn_label_noise_ratio",
    "dn_box_noise_scale",
    "focal_alpha",
    "focal_gamma",
    "set_cost_class",
    "set_cost_bbox",
    "set_cost_giou",
    "cls_loss_coef",
    "bbox_loss_coef",
    "giou_loss_coef",
    "num_select",
]
_SAME_TRAIN = [
    "lr",
    "lr_backbone",
    "param_dict_type",
    "lr_linear_proj_mult",
    "weight_decay",
    "clip_max_norm",
    "epochs",
    "lr_drop",
    "batch_size",
    "seed",
    "ema_decay",
]

OFFICIAL_KEYS: dict[str, tuple[str, Reader]] = {
    **{f"model.{name}": _arg(name) for name in SAME_MODEL_OPTIONS},
    "model.pe_temperature": _arg("pe_temperatureH"),
    "data.train_sizes": _arg("data_aug_scales", list),
    "data.max_size": _arg("data_aug_max_size"),
    "data.crop_resize_sizes": _arg("data_aug_scales2_resize", list),
    "data.crop_min": ("data_aug_scales2_crop", lambda a: a["data_aug_scales2_crop"][0]),
    "data.crop_max": ("data_aug_scales2_crop", lambda a: a["data_aug_scales2_crop"][1]),
    "data.num_workers": _arg("num_workers"),
    **{f"train.{name}": _arg(name) for name in _SAME_TRAIN},
    "train.lr_drop_epochs": ("lr_drop_list", _drop_list),
    "train.ema": _arg("use_ema"),
    "train.checkpoint_interval": _arg("save_checkpoint_interval"),
    "train.world_size": _arg("world_size"),
    "train.amp": _arg("amp", lambda on: "auto" if on else "off"),
    # The DINO_TBX11K fork's option; the official code has none (1 micro-batch per step).
    "train.grad_accum": (
        "gradient_accumulation_steps",
        lambda a: a.get("gradient_accumulation_steps") or 1,
    ),
}

# Official options whose value tbx-train fixes (its model has only this form).
FIXED: dict[str, Any] = {
    "lr_backbone_names": ["backbone.0"],
    "lr_linear_proj_names": ["reference_points", "sampling_offsets"],
    "pe_temperatureW": 20,
    "modelname": "dino",
    "position_embedding": "sine",
    "return_interm_indices": [1, 2, 3],
    "dilation": False,
    "batch_norm_type": "FrozenBatchNorm2d",
    "two_stage_type": "standard",
    "transformer_activation": "relu",
    "pre_norm": False,
    "query_dim": 4,
    "num_patterns": 0,
    "masks": False,
    "aux_loss": True,
    "use_dn": True,
    "embed_init_tgt": True,
    "dec_pred_bbox_embed_share": True,
    "dec_pred_class_embed_share": True,
    "decoder_module_seq": ["sa", "ca", "ffn"],
    "decoder_sa_type": "sa",
    "matcher_type": "HungarianMatcher",
    "interm_loss_coef": 1.0,
    "enc_loss_coef": 1.0,
    "no_interm_box_loss": False,
    "two_stage_keep_all_tokens": False,
    "use_deformable_box_attn": False,
    "dec_layer_number": None,
    "unic_layers": 0,
    "ddetr_lr_param": False,
    "onecyclelr": False,
    "ema_epoch": 0,
    "frozen_weights": None,
    "fix_size": False,
    "add_channel_attention": False,
    "add_pos_value": False,
    "backbone_freeze_keywords": None,
    "dabdetr_deformable_decoder": False,
    "dabdetr_deformable_encoder": False,
    "dabdetr_yolo_like_anchor_update": False,
    "decoder_layer_noise": False,
    "random_refpoints_xy": False,
    "fix_refpoints_hw": -1,
    "two_stage_add_query_num": 0,
    "two_stage_bbox_embed_share": False,
    "two_stage_class_embed_share": False,
    "two_stage_default_hw": 0.05,
    "two_stage_learn_wh": False,
    "two_stage_pat_embed": 0,
    "use_checkpoint": False,
    "use_detached_boxes_dec_out": False,
    "nms_iou_threshold": -1,
    "data_aug_scale_overlap": None,
}

# Official options read through another key (see OFFICIAL_KEYS), or without effect when the
# FIXED values hold (e.g. the DN-DETR decoder noise and mask losses are off).
READ_ELSEWHERE = {"multi_step_lr"}
NO_EFFECT = {
    "box_attn_type": "only with use_deformable_box_attn",
    "dln_xy_noise": "only with decoder_layer_noise",
    "dln_hw_noise": "only with decoder_layer_noise",
    "dice_loss_coef": "only with masks",
    "mask_loss_coef": "only with masks",
    "pdetr3_bbox_embed_diff_each_layer": "not read by DINO",
    "pdetr3_refHW": "not read by DINO",
    "match_unstable_error": "not read by DINO",
    # The DINO_TBX11K fork's additions, not applied in its runs: log.txt of 39627174/39707249
    # shows lr 1e-4 from epoch 0 (no warmup) and one drop, at 30, lasting through epoch 45.
    "lr_drop_epochs": "fork option, not applied (log.txt: one drop, at 30)",
    "warmup_epochs": "fork option, not applied (log.txt: lr 1e-4 from epoch 0)",
}


def official_values(args: Mapping[str, Any]) -> dict[str, Any]:
    """{tbx-train key: value} for every mapped option that `args` holds."""
    values = {}
    for key, (name, read) in OFFICIAL_KEYS.items():
        if name in args or key == "train.grad_accum":
            values[key] = read(args)
    return values


def unmapped(args: Mapping[str, Any]) -> list[str]:
    """The official options neither mapped, fixed nor without effect: paths, launcher state and
    run modes, given on the command line instead (--data-root, --output-dir, --pretrained)."""
    known = {name for name, _ in OFFICIAL_KEYS.values()} | set(FIXED) | READ_ELSEWHERE
    known |= set(NO_EFFECT)
    return sorted(name for name in args if name not in known)
