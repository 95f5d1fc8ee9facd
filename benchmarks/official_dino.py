"""Build the official DINO (IDEA-Research/DINO) from an existing checkout, pure-PyTorch attention.

Nothing of the official code lives in this repository: `load_official` imports it from a checkout
the caller names (`--official DIR` or TBX_OFFICIAL_DINO of bench_vs_official.py). These shims
let it run on a CPU-only machine without building its CUDA extension:
- an empty `MultiScaleDeformableAttention` module, so the import of the compiled op succeeds,
  and, when timm is not installed, the three timm names its ConvNeXt/Swin files import (unused
  by the ResNet-50 model);
- the attention function routed to the checkout's own `ms_deform_attn_core_pytorch` (the path
  the official code keeps "for debug and test"), which is what it runs without the CUDA op;
- `Tensor.cuda()` and `Tensor.to("cuda")` returning the tensor itself on a machine without
  CUDA: its denoising and loss code move index tensors to the GPU unconditionally;
- `is_main_process` false while the backbone is built, so torchvision downloads no weights
  (the benchmark loads the same weights into both models anyway).
"""

from __future__ import annotations

import runpy
import sys
import types
from argparse import Namespace
from pathlib import Path

from tbx_train.config import ModelConfig
from tbx_train.official_args import SAME_MODEL_OPTIONS

# ModelConfig field -> the official config's name for it, where the two differ.
_RENAMED = {"pe_temperature": ("pe_temperatureH", "pe_temperatureW")}
# The model options both name alike (one table: tbx_train.official_args); focal_gamma is left
# to the official config file's own value, as this benchmark always did.
_SHARED = [name for name in SAME_MODEL_OPTIONS if name != "focal_gamma"]


def check_checkout(root: Path) -> str | None:
    """Why `root` is not a usable official DINO checkout, or None when it is."""
    needed = ("models/dino/dino.py", "config/DINO/DINO_4scale.py", "util/misc.py")
    missing = [name for name in needed if not (root / name).is_file()]
    if missing:
        return f"{root} is not an IDEA-Research/DINO checkout (missing {', '.join(missing)})"
    return None


def official_args(root: Path, model: ModelConfig) -> Namespace:
    """The DINO-4scale config file's values, with every field `model` shares replaced by ours."""
    values: dict[str, object] = {}
    for name in ("config/DINO/coco_transformer.py", "config/DINO/DINO_4scale.py"):
        loaded = runpy.run_path(str(root / name))
        values.update({k: v for k, v in loaded.items() if not k.startswith("_")})
    for field in _SHARED:
        values[field] = getattr(model, field)
    for field, names in _RENAMED.items():
        values.update(dict.fromkeys(names, getattr(model, field)))
    values.update(device="cpu", masks=False, frozen_weights=None, backbone_dir=None)
    return Namespace(**values)


def _routed_to_pytorch_core(functions: types.ModuleType) -> type:
    core = functions.ms_deform_attn_func.ms_deform_attn_core_pytorch

    class PytorchPath:
        @staticmethod
        def apply(value, shapes, _level_start, locations, weights, _im2col_step):
            return core(value, shapes, locations, weights)

    return PytorchPath


def _stub_timm_if_missing() -> None:
    try:
        import timm  # noqa: F401
    except ImportError:
        import torch

        layers = types.ModuleType("timm.models.layers")
        layers.trunc_normal_ = torch.nn.init.trunc_normal_  # type: ignore[attr-defined]
        layers.DropPath = torch.nn.Identity  # type: ignore[attr-defined]
        layers.to_2tuple = lambda x: (x, x)  # type: ignore[attr-defined]
        for name in ("timm", "timm.models"):
            sys.modules[name] = types.ModuleType(name)
        sys.modules["timm.models.layers"] = layers


def _keep_on_cpu(torch) -> None:
    to = torch.Tensor.to

    def to_unless_cuda(tensor, *args, **kwargs):
        return tensor if args[:1] == ("cuda",) else to(tensor, *args, **kwargs)

    torch.Tensor.cuda = lambda tensor, *args, **kwargs: tensor
    torch.Tensor.to = to_unless_cuda


def load_official(root: Path, model: ModelConfig):
    """-> (model, criterion, args) of the official code for `model`'s configuration."""
    import torch

    sys.path.insert(0, str(root))
    sys.modules.setdefault("MultiScaleDeformableAttention", types.ModuleType("stub"))
    _stub_timm_if_missing()
    import models  # noqa: F401  (registers the builders)
    import models.dino.backbone as backbone
    import models.dino.ops.functions as functions
    import models.dino.ops.modules.ms_deform_attn as attention
    from models.registry import MODULE_BUILD_FUNCS

    attention.MSDeformAttnFunction = _routed_to_pytorch_core(functions)
    backbone.is_main_process = lambda: False
    if not torch.cuda.is_available():
        _keep_on_cpu(torch)
    args = official_args(root, model)
    detector, criterion, _ = MODULE_BUILD_FUNCS.get(args.modelname)(args)
    return detector, criterion, args


def official_optimizer(root: Path, detector, args: Namespace):
    """AdamW over the official parameter groups, built as its main.py builds it."""
    import torch
    from util.get_param_dicts import get_param_dict

    groups = get_param_dict(args, detector)
    return torch.optim.AdamW(groups, lr=args.lr, weight_decay=args.weight_decay)


def nested(images, masks):
    """The official model's input type."""
    from util.misc import NestedTensor

    return NestedTensor(images, masks)
