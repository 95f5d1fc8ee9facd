"""Typed, frozen configuration for tbx-train.

The dataclass defaults are the official DINO-4scale R50 recipe (COCO). Named presets are TOML
files in `tbx_train/presets/`; `tbx_train.config_files` reads them, a run's `--config` file and
`--set key=value` overrides into these dataclasses. Everything below the CLI takes them.
"""

from __future__ import annotations

from dataclasses import dataclass


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the fix."""


# Fields with a fixed set of values (the message of a bad value lists them).
CHOICES: dict[str, tuple[str, ...]] = {
    "model.backbone": ("resnet50", "resnet18"),
    "train.amp": ("off", "auto", "bf16", "fp16"),
    "train.device": ("auto", "cpu", "cuda"),
    # Official `param_dict_type`: "default" = 2 groups (backbone, rest); "ddetr_in_mmdet" adds
    # a third group for reference_points / sampling_offsets at lr x lr_linear_proj_mult.
    "train.param_dict_type": ("default", "ddetr_in_mmdet"),
}
BACKBONES = frozenset(CHOICES["model.backbone"])
AMP_MODES = CHOICES["train.amp"]


def check_choice(key: str, value: str) -> None:
    """Raise ConfigError when `value` is not one of the allowed values of `key`."""
    allowed = CHOICES[key]
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not supported; choose one of {list(allowed)}")


@dataclass(frozen=True)
class ModelConfig:
    """DINO-4scale architecture and loss settings (defaults: the paper's DINO-4scale R50).

    `num_classes` follows the official convention: max category id + 1 (ids are used raw).
    """

    num_classes: int = 91
    dn_labelbook_size: int = 91
    backbone: str = "resnet50"  # "resnet50" | "resnet18"
    backbone_weights: str | None = None  # local ImageNet state_dict path; never downloaded
    freeze_stem: bool = True  # stem and layer1 frozen (official); off to train them from scratch
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
    # Matching costs and loss weights; focal_alpha/gamma are used by the loss and the matcher.
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
        check_choice("model.backbone", self.backbone)
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
        if self.num_queries < 1 or self.num_select < 1:
            raise ConfigError("num_queries and num_select must be >= 1")
        for name in ("dropout", "dn_label_noise_ratio", "focal_alpha"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"model.{name}={getattr(self, name)} must be within [0, 1]")
        if self.dn_box_noise_scale < 0:
            raise ConfigError(f"dn_box_noise_scale={self.dn_box_noise_scale} must be >= 0")


@dataclass(frozen=True)
class DataConfig:
    """Where the data lives and how images are augmented (sizes are the shorter side, pixels).

    Training draws a flip, then one of two branches with equal odds (official RandomSelect):
    resize to one of `train_sizes`, or resize to one of `crop_resize_sizes`, crop a random
    region of `crop_min`..`crop_max` pixels, then resize to one of `train_sizes`; the longer side
    never exceeds `max_size`. `crop_prob` 0 keeps only the first branch. Evaluation resizes to
    `val_size` (0 = max(train_sizes), as the official code does).
    Empty paths mean the TBX11K layout under `data_root`: `imgs/` and `annotations/json/`.
    """

    data_root: str = ""
    train_json: str = ""  # default: <data_root>/annotations/json/TBX11K_train.json
    val_json: str = ""  # default: <data_root>/annotations/json/TBX11K_val.json
    image_root: str = ""  # default: <data_root>/imgs (json file_name is relative to it)
    train_sizes: tuple[int, ...] = (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800)
    max_size: int = 1333  # longer side cap in pixels
    crop_resize_sizes: tuple[int, ...] = (400, 500, 600)
    crop_min: int = 384
    crop_max: int = 600
    crop_prob: float = 0.5
    val_size: int = 0  # 0 = max(train_sizes)
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

    def eval_size(self) -> int:
        """The shorter side at evaluation: `val_size`, or max(train_sizes) when 0."""
        return self.val_size or max(self.train_sizes)

    def validate_sizes(self) -> None:
        """Raise ConfigError for impossible augmentation settings (no paths needed)."""
        sizes = (*self.train_sizes, *self.crop_resize_sizes, self.crop_min, self.max_size)
        if not self.train_sizes or min(sizes) < 32 or (self.val_size and self.val_size < 32):
            raise ConfigError("train_sizes, crop sizes, max_size and val_size must be >= 32 px")
        if self.crop_min > self.crop_max:
            raise ConfigError(f"crop_min={self.crop_min} must be <= crop_max={self.crop_max}")
        if self.crop_prob > 0 and not self.crop_resize_sizes:
            raise ConfigError("crop_prob > 0 needs crop_resize_sizes; or set crop_prob = 0")
        for name in ("flip_prob", "crop_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"data.{name}={getattr(self, name)} must be within [0, 1]")
        if self.num_workers < 0:
            raise ConfigError(f"num_workers={self.num_workers} must be >= 0")

    def validate(self) -> None:
        """Raise ConfigError naming the first bad field and the fix."""
        if not (self.data_root or (self.train_json and self.val_json and self.image_root)):
            raise ConfigError(
                "no data: give --data-root (TBX11K layout) or all of --train-json, --val-json "
                "and --image-root"
            )
        self.validate_sizes()


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and run-loop settings (defaults: official DINO-4scale, 12-epoch schedule).

    `batch_size` is images per device (GPU or CPU process); one optimizer step consumes
    batch_size x grad_accum x world_size images (the effective batch). The schedule is StepLR
    (tenfold drop every `lr_drop` epochs) unless `lr_drop_epochs` lists the drop epochs.
    """

    lr: float = 1e-4
    lr_backbone: float = 1e-5
    param_dict_type: str = "default"  # "default": 2 groups; "ddetr_in_mmdet": + linear_proj
    lr_linear_proj_mult: float = 0.1  # used by "ddetr_in_mmdet" only, as in official DINO
    weight_decay: float = 1e-4
    clip_max_norm: float = 0.1  # 0 disables clipping
    epochs: int = 12
    lr_drop: int = 11  # StepLR step size in epochs (gamma 0.1)
    lr_drop_epochs: tuple[int, ...] = ()  # MultiStepLR milestones; empty = StepLR(lr_drop)
    batch_size: int = 2  # images per device
    val_batch_size: int = 1  # images per device at evaluation (official: 1)
    grad_accum: int = 1  # micro-batches per optimizer step
    world_size: int | None = None  # expected processes; None = whatever the launcher gives
    seed: int = 42
    amp: str = "off"  # training autocast on CUDA: off | auto | bf16 | fp16 (evaluation is fp32)
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

    def lr_drops(self) -> list[int]:
        """The epochs (0-based, counted before the epoch runs) at which the rates fall tenfold."""
        if self.lr_drop_epochs:
            return sorted(self.lr_drop_epochs)
        return list(range(self.lr_drop, self.epochs, self.lr_drop))

    def validate(self) -> None:
        """Raise ConfigError naming the first bad field and the fix."""
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "val_batch_size": self.val_batch_size,
            "grad_accum": self.grad_accum,
            "print_freq": self.print_freq,
            "eval_interval": self.eval_interval,
            "checkpoint_interval": self.checkpoint_interval,
            "lr_drop": self.lr_drop,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name}={value} must be >= 1")
        check_choice("train.amp", self.amp)
        check_choice("train.device", self.device)
        check_choice("train.param_dict_type", self.param_dict_type)
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps={self.max_steps} must be >= 1 (or unset)")
        if self.world_size is not None and self.world_size < 1:
            raise ConfigError(f"world_size={self.world_size} must be >= 1 (or unset)")
        if not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay={self.ema_decay} must be within (0, 1)")
        if self.lr <= 0 or self.lr_backbone < 0 or self.weight_decay < 0:
            raise ConfigError("lr must be > 0; lr_backbone and weight_decay must be >= 0")
        if any(e < 1 for e in self.lr_drop_epochs) or len(set(self.lr_drop_epochs)) != len(
            self.lr_drop_epochs
        ):
            raise ConfigError(f"lr_drop_epochs={list(self.lr_drop_epochs)} must be distinct >= 1")


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
        self.data.validate_sizes()


SECTIONS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}


def model_preset(name: str, **overrides: object) -> ModelConfig:
    """The model part of the named preset (`dino-4scale-r50`, `tbx11k`, `tiny`, ...), with
    fields replaced; unknown names list the choices."""
    from dataclasses import replace

    from tbx_train.config_files import preset_names, run_preset

    if name not in preset_names():
        raise ConfigError(f"unknown model preset {name!r}; choose one of {preset_names()}")
    config = replace(run_preset(name).model, **overrides)  # type: ignore[arg-type]
    config.validate()
    return config


def run_preset(name: str) -> RunConfig:
    """The named run preset (read from its TOML file); unknown names list the choices."""
    from tbx_train.config_files import run_preset as load

    return load(name)


class _PresetModels(dict):
    """`MODEL_PRESETS[name]`: the model part of each preset file, read on first use."""

    def _fill(self) -> None:
        if not super().__len__():
            from tbx_train.config_files import preset_names, run_preset

            for name in preset_names():
                self[name] = run_preset(name).model

    def __getitem__(self, name: str) -> ModelConfig:
        self._fill()
        return super().__getitem__(name)

    def __iter__(self):
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def __contains__(self, name: object) -> bool:
        self._fill()
        return super().__contains__(name)

    def keys(self):  # type: ignore[override]
        self._fill()
        return super().keys()

    def items(self):  # type: ignore[override]
        self._fill()
        return super().items()


MODEL_PRESETS: dict[str, ModelConfig] = _PresetModels()
