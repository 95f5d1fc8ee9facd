"""DINO's learning-rate groups, matched by the official parameter names."""

import torch
from torch import nn

from tbx_train.config import TrainConfig
from tbx_train.optim import build_lr_scheduler, build_optimizer, group_of


def test_groups_follow_the_official_names():
    assert group_of("backbone.0.body.layer2.0.conv1.weight") == "backbone"
    assert group_of("transformer.encoder.layers.0.self_attn.sampling_offsets.weight") == (
        "linear_proj"
    )
    assert group_of("transformer.decoder.ref_point_head.layers.0.weight") == "main"
    assert group_of("input_proj.0.0.weight") == "main"


class _Named(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.ModuleList([nn.Linear(2, 2)])
        self.sampling_offsets = nn.Linear(2, 2)
        self.head = nn.Linear(2, 2)
        self.frozen = nn.Linear(2, 2).requires_grad_(False)


def test_optimizer_rates_and_schedule():
    config = TrainConfig(lr=1e-4, lr_backbone=1e-5, lr_drop=2, param_dict_type="ddetr_in_mmdet")
    optimizer = build_optimizer(_Named(), config)
    rates = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert rates == {"main": 1e-4, "backbone": 1e-5, "linear_proj": 1e-5}
    assert sum(len(g["params"]) for g in optimizer.param_groups) == 6  # frozen left out
    assert all(g["weight_decay"] == 1e-4 for g in optimizer.param_groups)
    scheduler = build_lr_scheduler(optimizer, config)
    seen = []
    for _ in range(4):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert torch.allclose(torch.tensor(seen), torch.tensor([1e-4, 1e-4, 1e-5, 1e-5]))


def test_default_groups_are_the_official_two():
    optimizer = build_optimizer(_Named(), TrainConfig(lr=1e-4, lr_backbone=1e-5))
    rates = {g["name"]: (g["lr"], len(g["params"])) for g in optimizer.param_groups}
    assert rates == {"main": (1e-4, 4), "backbone": (1e-5, 2)}  # sampling_offsets at lr


def test_multi_step_schedule_drops_at_the_listed_epochs():
    config = TrainConfig(lr=1e-4, epochs=6, lr_drop_epochs=(2, 4))
    optimizer = build_optimizer(_Named(), config)
    scheduler = build_lr_scheduler(optimizer, config)
    seen = []
    for _ in range(6):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert torch.allclose(torch.tensor(seen), torch.tensor([1e-4] * 2 + [1e-5] * 2 + [1e-6] * 2))


def test_group_sizes_equal_the_official_ones_for_the_4_class_r50():
    from tbx_train.config import run_preset
    from tbx_train.model import build_dino
    from tbx_train.optim import build_param_groups

    config = run_preset("tbx11k")
    model = build_dino(config.model)[0]
    sizes = {g["name"]: len(g["params"]) for g in build_param_groups(model, config.train)}
    assert sizes == {"main": 273, "backbone": 42}  # official get_param_dict, "default"
