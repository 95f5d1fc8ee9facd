"""Start a run from another run's weights (`--pretrained`): model weights only, never its state.

Accepts official DINO checkpoints (e.g. `checkpoint0011_4scale.pth`, 91 COCO classes) and
tbx-train ones. When the class count differs, every class-dependent tensor (`class_embed`,
`label_enc`, `enc_out_class_embed`, and their aliases under `transformer.decoder.` /
`transformer.`) keeps the model's own initialisation, which is what official DINO does with
`--finetune_ignore label_enc.weight class_embed`. Everything else loads when name and shape match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tbx_train.checkpoint import (
    CheckpointError,
    checkpoint_kind,
    load_checkpoint,
    model_state,
)

CLASS_DEPENDENT = re.compile(r"(^|\.)(class_embed|label_enc|enc_out_class_embed)(\.|$)")
CLASS_HEAD_KEY = "class_embed.0.weight"  # [num_classes, hidden_dim] in the official layout


class PretrainedMismatchError(CheckpointError):
    """The checkpoint's weights do not fit the model at all (no tensor could be loaded)."""


@dataclass(frozen=True)
class LoadReport:
    """What `load_pretrained` did, key by key (model state-dict names)."""

    source: Path
    source_kind: str
    source_num_classes: int | None
    model_num_classes: int | None
    loaded: tuple[str, ...]
    reinitialised: tuple[str, ...]  # class-dependent keys kept at the model's initialisation
    skipped: tuple[str, ...]  # same name, different shape, not class-dependent
    missing: tuple[str, ...]  # in the model, not in the checkpoint
    unexpected: tuple[str, ...]  # in the checkpoint, not in the model

    def summary_lines(self) -> list[str]:
        """Human-readable lines for the run log (counts, then the first names of each group)."""
        lines = [
            f"Pretrained weights from {self.source} ({self.source_kind}): "
            f"loaded {len(self.loaded)}, re-initialised {len(self.reinitialised)}, "
            f"skipped {len(self.skipped)} (shape mismatch), missing {len(self.missing)}, "
            f"unexpected {len(self.unexpected)}"
        ]
        if self.reinitialised:
            lines.append(
                f"  classes {self.source_num_classes} -> {self.model_num_classes}: re-initialised "
                + ", ".join(self.reinitialised[:6])
                + (" ..." if len(self.reinitialised) > 6 else "")
            )
        for title, names in (
            ("skipped", self.skipped),
            ("missing", self.missing),
            ("unexpected", self.unexpected),
        ):
            if names:
                more = " ..." if len(names) > 6 else ""
                lines.append(f"  {title}: " + ", ".join(names[:6]) + more)
        return lines


def num_classes_of(state: Mapping[str, torch.Tensor]) -> int | None:
    """The class count a DINO state dict was built for (rows of `class_embed.0.weight`)."""
    weight = state.get(CLASS_HEAD_KEY)
    return int(weight.shape[0]) if weight is not None else None


def load_pretrained(model: nn.Module, path: Path, *, use_ema: bool = False) -> LoadReport:
    """Copy matching weights of the checkpoint at `path` into `model` (freshly built) in place.

    Raises CheckpointError subclasses for unreadable files and PretrainedMismatchError when not a
    single tensor fits. Optimizer, scheduler and epoch of the source are ignored on purpose.
    """
    payload = load_checkpoint(path)
    kind = _kind_or_plain(payload)
    source = model_state(payload, use_ema=use_ema)
    target = model.state_dict()
    source_classes, model_classes = num_classes_of(source), num_classes_of(target)
    classes_differ = source_classes != model_classes
    loaded, reinit, skipped, merged = [], [], [], {}
    for name, tensor in target.items():
        if name not in source:
            continue
        if classes_differ and CLASS_DEPENDENT.search(name):
            reinit.append(name)
        elif source[name].shape != tensor.shape:
            skipped.append(f"{name} {list(source[name].shape)} vs {list(tensor.shape)}")
        else:
            merged[name] = source[name]
            loaded.append(name)
    if not loaded:
        raise PretrainedMismatchError(
            f"no tensor of {path} fits the model ({len(source)} checkpoint keys, {len(target)} "
            f"model keys, {len(skipped)} same-name shape mismatches); check --model-preset"
        )
    model.load_state_dict(merged, strict=False)
    return LoadReport(
        source=Path(path),
        source_kind=kind,
        source_num_classes=source_classes,
        model_num_classes=model_classes,
        loaded=tuple(loaded),
        reinitialised=tuple(reinit),
        skipped=tuple(skipped),
        missing=tuple(name for name in target if name not in source),
        unexpected=tuple(name for name in source if name not in target),
    )


def _kind_or_plain(payload: Mapping[str, object]) -> str:
    # A bare {"model": state_dict} (e.g. exported weights) is fine for --pretrained; a tbx-train
    # file of another format_version still raises.
    if "format" in payload or "args" in payload:
        return checkpoint_kind(payload)
    return "weights-only"
