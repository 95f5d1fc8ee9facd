"""One builder for the detector, its loss and its post-processing, from a typed ModelConfig."""

from __future__ import annotations

from tbx_train.config import ModelConfig
from tbx_train.model.criterion import SetCriterion, build_weight_dict
from tbx_train.model.dino import DINO, build_model
from tbx_train.model.matcher import HungarianMatcher
from tbx_train.model.postprocess import PostProcess


def build_dino(config: ModelConfig) -> tuple[DINO, SetCriterion, PostProcess]:
    """-> (model, criterion, postprocessor) for `config` (validated first; ConfigError if bad)."""
    model = build_model(config)
    matcher = HungarianMatcher(
        cost_class=config.set_cost_class,
        cost_bbox=config.set_cost_bbox,
        cost_giou=config.set_cost_giou,
        focal_alpha=config.focal_alpha,
        focal_gamma=config.focal_gamma,
    )
    criterion = SetCriterion(
        config.num_classes,
        matcher,
        build_weight_dict(config),
        focal_alpha=config.focal_alpha,
        focal_gamma=config.focal_gamma,
        dec_layers=config.dec_layers,
    )
    return model, criterion, PostProcess(config.num_select)
