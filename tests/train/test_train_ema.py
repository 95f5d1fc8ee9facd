"""EMA of the weights, and where AMP applies."""

import torch
from torch import nn

from tbx_train.ema import ModelEma
from tbx_train.engine import resolve_amp


def test_ema_blends_float_tensors_and_copies_integer_buffers():
    model = nn.BatchNorm1d(3)  # float weights plus an integer buffer (num_batches_tracked)
    ema = ModelEma(model, decay=0.75)
    with torch.no_grad():
        model.weight.fill_(2.0)  # was 1.0
        model.num_batches_tracked.fill_(7)
    ema.update(model)
    assert torch.allclose(ema.module.weight, torch.full((3,), 0.75 * 1.0 + 0.25 * 2.0))
    assert int(ema.module.num_batches_tracked) == 7
    assert not any(p.requires_grad for p in ema.module.parameters())
    assert model.weight.requires_grad  # the trained model is untouched


def test_amp_only_on_cuda():
    cpu = torch.device("cpu")
    assert resolve_amp("auto", cpu) == (None, False)
    assert resolve_amp("fp16", cpu) == (None, False)
    assert resolve_amp("off", torch.device("cuda", 0)) == (None, False)
