"""Typed, frozen configuration for tbx-train, and the named presets.

The CLI is the only place that parses arguments; everything below it takes these dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the fix."""


@dataclass(frozen=True)
class ModelConfig:
    """DINO-4scale architecture and loss settings (defaults: the paper's DINO-4scale R50).

    `num_classes` follows the official convention: max category id + 1 (ids are used raw).
    """

    num_classes: int = 91
    dn_labelbook_size: int = 91
    backbone: str = "resnet50"  # "resnet50" | "resnet18"
    backbone_weights: str | None = None  # local ImageNet state_dict path; never downloaded
    hidden_dim: int = 256
    nheads: int = 8
    dim_feedforward: int = 2048
    enc_layers: int = 6
    dec_layers: int = 6
    num_queries: int = 900
    num_feature_levels: int = 4
    enc_n_points: int = 4
    dec_n_points: int = 4
    dropout: float = 0.0
    pe_temperature: float = 20.0
    # Contrastive denoising (CDN).
    dn_number: int = 100
    dn_label_noise_ratio: float = 0.5
    dn_box_noise_scale: float = 1.0  # the official training script passes 1.0 (config says 0.4)
    # Matching costs and loss weights.
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    set_cost_class: float = 2.0
    set_cost_bbox: float = 5.0
    set_cost_giou: float = 2.0
    cls_loss_coef: float = 1.0
    bbox_loss_coef: float = 5.0
    giou_loss_coef: float = 2.0
    # Post-processing: top-k over queries x classes.
    num_select: int = 300

    def validate(self) -> None:
        """Raise ConfigError naming the first inconsistent field and how to fix it."""
        if self.backbone not in BACKBONES:
            raise ConfigError(
                f"backbone={self.backbone!r} is not supported; choose one of {sorted(BACKBONES)}"
            )
        if self.hidden_dim % self.nheads:
            raise ConfigError(
                f"hidden_dim={self.hidden_dim} must be divisible by nheads={self.nheads}"
            )
        if self.num_classes < 1:
            raise ConfigError(f"num_classes={self.num_classes} must be >= 1 (max category id + 1)")
        if self.dn_labelbook_size < self.num_classes - 1:
            raise ConfigError(
                f"dn_labelbook_size={self.dn_labelbook_size} is smaller than the largest class id "
                f"{self.num_classes - 1}; set it to at least num_classes"
            )


BACKBONES = frozenset({"resnet50", "resnet18"})

MODEL_PRESETS: dict[str, ModelConfig] = {
    # The paper's DINO-4scale R50 on COCO.
    "dino-4scale-r50": ModelConfig(),
    # TBX11K as the official runs configured it: category ids 1..3, so num_classes = 4.
    "tbx11k": ModelConfig(num_classes=4, dn_labelbook_size=4),
    # Same architecture, small enough for CPU tests and the demo.
    "tiny": ModelConfig(
        num_classes=4,
        dn_labelbook_size=4,
        backbone="resnet18",
        hidden_dim=128,
        nheads=8,
        dim_feedforward=512,
        enc_layers=2,
        dec_layers=2,
        num_queries=100,
        dn_number=20,
        num_select=100,
    ),
}


def model_preset(name: str, **overrides: object) -> ModelConfig:
    """Return the named preset, optionally with fields replaced; unknown names list the choices."""
    if name not in MODEL_PRESETS:
        raise ConfigError(f"unknown model preset {name!r}; choose one of {sorted(MODEL_PRESETS)}")
    config = replace(MODEL_PRESETS[name], **overrides)  # type: ignore[arg-type]
    config.validate()
    return config
