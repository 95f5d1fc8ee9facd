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


# ---------------------------------------------------------------------------------------------
# Run configuration (data, training) and the run presets. Owned by the engine; appended here so
# that one module holds every frozen dataclass the library takes.

AMP_MODES = ("auto", "bf16", "fp16", "off")


@dataclass(frozen=True)
class DataConfig:
    """Where the data lives and how images are resized (pixel sizes are of the shorter side).

    Empty paths mean the TBX11K layout under `data_root`: `imgs/` and `annotations/json/`.
    """

    data_root: str = ""
    train_json: str = ""  # default: <data_root>/annotations/json/TBX11K_train.json
    val_json: str = ""  # default: <data_root>/annotations/json/TBX11K_val.json
    image_root: str = ""  # default: <data_root>/imgs (json file_name is relative to it)
    train_sizes: tuple[int, ...] = (480, 512, 544, 576)  # shorter side, one per sample (real runs)
    max_size: int = 600  # longer side cap in pixels
    val_size: int = 512  # shorter side at evaluation, pixels
    flip_prob: float = 0.5
    num_workers: int = 2  # DataLoader worker processes per rank

    def train_json_path(self) -> str:
        """The training annotation file, from `train_json` or the TBX11K layout."""
        return self.train_json or f"{self.data_root}/annotations/json/TBX11K_train.json"

    def val_json_path(self) -> str:
        """The validation annotation file, from `val_json` or the TBX11K layout."""
        return self.val_json or f"{self.data_root}/annotations/json/TBX11K_val.json"

    def image_root_path(self) -> str:
        """The folder that json `file_name` entries are relative to."""
        return self.image_root or f"{self.data_root}/imgs"

    def validate(self) -> None:
        """Raise ConfigError naming the first bad field and the fix."""
        if not (self.data_root or (self.train_json and self.val_json and self.image_root)):
            raise ConfigError(
                "no data: give --data-root (TBX11K layout) or all of --train-json, --val-json "
                "and --image-root"
            )
        if not self.train_sizes or min(self.train_sizes) < 32 or self.val_size < 32:
            raise ConfigError("train_sizes and val_size must be >= 32 pixels")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ConfigError(f"flip_prob={self.flip_prob} must be within [0, 1]")
        if self.num_workers < 0:
            raise ConfigError(f"num_workers={self.num_workers} must be >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and run-loop settings (defaults: official DINO-4scale, 12-epoch schedule).

    `batch_size` is images per device (GPU or CPU process); one optimizer step consumes
    batch_size x grad_accum x world_size images (the effective batch).
    """

    lr: float = 1e-4
    lr_backbone: float = 1e-5
    lr_linear_proj_mult: float = 0.1  # reference_points / sampling_offsets, as official DINO
    weight_decay: float = 1e-4
    clip_max_norm: float = 0.1  # 0 disables clipping
    epochs: int = 12
    lr_drop: int = 11  # StepLR step size in epochs (gamma 0.1)
    batch_size: int = 2  # images per device
    grad_accum: int = 1  # micro-batches per optimizer step
    world_size: int | None = None  # expected processes; None = whatever the launcher gives
    seed: int = 42
    amp: str = "auto"  # auto = bf16 on CUDA where supported, else off
    ema: bool = False
    ema_decay: float = 0.9997
    print_freq: int = 10  # iterations between log lines
    max_steps: int | None = None  # stop after this many optimizer steps (smoke runs)
    eval_interval: int = 1  # evaluate every N epochs (and after the last)
    checkpoint_interval: int = 1  # keep checkpointNNNN.pth every N epochs
    output_dir: str = "outputs/run"
    device: str = "auto"  # auto | cpu | cuda
    resume: str = "auto"  # PATH | auto | never
    pretrained: str | None = None
    allow_strategy_change: bool = False

    def effective_batch(self, world_size: int) -> int:
        """Images per optimizer step."""
        return self.batch_size * self.grad_accum * world_size

    def validate(self) -> None:
        """Raise ConfigError naming the first bad field and the fix."""
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "grad_accum": self.grad_accum,
            "print_freq": self.print_freq,
            "eval_interval": self.eval_interval,
            "checkpoint_interval": self.checkpoint_interval,
            "lr_drop": self.lr_drop,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name}={value} must be >= 1")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"amp={self.amp!r} is not supported; choose one of {AMP_MODES}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device={self.device!r}; choose one of ('auto', 'cpu', 'cuda')")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps={self.max_steps} must be >= 1 (or unset)")
        if self.world_size is not None and self.world_size < 1:
            raise ConfigError(f"world_size={self.world_size} must be >= 1 (or unset)")
        if not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay={self.ema_decay} must be within (0, 1)")
        if self.lr <= 0 or self.lr_backbone < 0 or self.weight_decay < 0:
            raise ConfigError("lr must be > 0; lr_backbone and weight_decay must be >= 0")


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs: the model, the data and the training loop."""

    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    preset: str = "custom"

    def validate(self) -> None:
        """Validate each part (data paths are checked by the data layer when it opens them)."""
        self.model.validate()
        self.train.validate()


_TBX11K_TRAIN = TrainConfig(batch_size=2, grad_accum=1, epochs=12, lr_drop=11)

RUN_PRESETS: dict[str, RunConfig] = {
    # The demo: learns the `tbx-train synth` default set (128 px) on CPU in a few minutes.
    # No ImageNet weights here, so the backbone trains from scratch at the full rate; 2 epochs
    # of 150 steps reach AP50 ~0.8 on the synthetic val split (StepLR drops after them).
    "tiny": RunConfig(
        model=MODEL_PRESETS["tiny"],
        data=DataConfig(train_sizes=(128,), max_size=256, val_size=128, num_workers=0),
        train=TrainConfig(
            lr=2e-4, lr_backbone=2e-4, epochs=2, lr_drop=2, batch_size=2, print_freq=10
        ),
        preset="tiny",
    ),
    # Official DINO-4scale schedule on TBX11K: 2 images per device, 12 epochs, lr drop at 11.
    "tbx11k": RunConfig(MODEL_PRESETS["tbx11k"], DataConfig(), _TBX11K_TRAIN, "tbx11k"),
    # The real project's two strategies, both with an effective batch of 2.
    "tbx11k-1gpu": RunConfig(
        MODEL_PRESETS["tbx11k"],
        DataConfig(),
        replace(_TBX11K_TRAIN, batch_size=1, grad_accum=2, world_size=1),
        "tbx11k-1gpu",
    ),
    "tbx11k-2gpu": RunConfig(
        MODEL_PRESETS["tbx11k"],
        DataConfig(),
        replace(_TBX11K_TRAIN, batch_size=1, grad_accum=1, world_size=2),
        "tbx11k-2gpu",
    ),
}


def run_preset(name: str) -> RunConfig:
    """Return the named run preset; unknown names list the choices."""
    if name not in RUN_PRESETS:
        raise ConfigError(f"unknown run preset {name!r}; choose one of {sorted(RUN_PRESETS)}")
    return RUN_PRESETS[name]
