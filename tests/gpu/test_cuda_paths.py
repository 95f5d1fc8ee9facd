"""The CUDA paths against the CPU ones: attention cores, the tiny DINO step, a real training run.

These need a CUDA device and skip without one (marker `gpu`). They are the checks that no CPU
test can make: the grid_sample core is the CUDA default, autocast only applies on CUDA, and the
run's device placement (model, targets, masks, EMA, evaluation) is only exercised there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tbx_train.config import model_preset
from tbx_train.model import build_dino
from tbx_train.model.deformable_attention import sample_by_embedding_bag, sample_by_grid_sample

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

REPO = Path(__file__).resolve().parents[2]


def _attention_case(seed: int, size: int = 64):
    """A realistic-size case: 4 levels of a `size` px image at strides 8-64, 8 heads, 4 points."""
    generator = torch.Generator().manual_seed(seed)
    shapes = [(size // s, size // s) for s in (8, 16, 32, 64)]
    tokens = sum(h * w for h, w in shapes)
    value = torch.randn(2, tokens, 8, 32, generator=generator)
    locations = torch.rand(2, 300, 8, 4, 4, 2, generator=generator) * 1.2 - 0.1
    weights = torch.rand(2, 300, 8, 4, 4, generator=generator).softmax(-1)
    return value, shapes, locations, weights


@pytest.mark.parametrize("core", [sample_by_grid_sample, sample_by_embedding_bag])
def test_attention_core_on_cuda_equals_cpu(core):
    value, shapes, locations, weights = _attention_case(0, size=128)
    on_cpu = sample_by_grid_sample(value.double(), shapes, locations.double(), weights.double())
    inputs = [t.cuda().requires_grad_() for t in (value, locations, weights)]
    on_gpu = core(inputs[0], shapes, inputs[1], inputs[2])
    torch.testing.assert_close(on_gpu.double().cpu(), on_cpu, atol=2e-5, rtol=1e-4)
    on_gpu.square().sum().backward()
    assert all(t.grad is not None and t.grad.isfinite().all() for t in inputs)


def test_cuda_cores_agree_on_gradients():
    value, shapes, locations, weights = _attention_case(1, size=128)
    grads = []
    for core in (sample_by_grid_sample, sample_by_embedding_bag):
        inputs = [t.cuda().requires_grad_() for t in (value, locations, weights)]
        core(inputs[0], shapes, inputs[1], inputs[2]).square().sum().backward()
        grads.append([t.grad.cpu() for t in inputs])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)


def _tiny_step(device: str, autocast_dtype: torch.dtype | None = None, dn_number: int = 20):
    torch.manual_seed(0)
    model, criterion, _ = build_dino(model_preset("tiny", dn_number=dn_number))
    model.to(device).train()
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, 96, 96, generator=generator).to(device)
    masks = torch.zeros(2, 96, 96, dtype=torch.bool, device=device)
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.3, 0.6, 0.1, 0.2]], device=device)
    targets = [
        {"labels": torch.tensor([1, 3], device=device), "boxes": boxes},
        {"labels": torch.tensor([2], device=device), "boxes": boxes[:1]},
    ]
    with torch.autocast(
        "cuda", dtype=autocast_dtype or torch.float32, enabled=bool(autocast_dtype)
    ):
        outputs = model(images, masks, targets)
        losses = criterion(outputs, targets)
    total = sum(losses[k] * w for k, w in criterion.weight_dict.items())
    total.backward()
    grad_norm = torch.sqrt(
        sum(p.grad.float().square().sum() for p in model.parameters() if p.grad is not None)
    )
    return total.item(), grad_norm.item()


def test_tiny_dino_step_on_cuda_equals_cpu():
    # Without denoising: its noise is drawn from the device's own generator, so CPU and CUDA
    # draw different noise from one seed (the engine seeds each micro-batch for that reason).
    cpu_loss, cpu_grad = _tiny_step("cpu", dn_number=0)
    gpu_loss, gpu_grad = _tiny_step("cuda", dn_number=0)
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-3)
    assert gpu_grad == pytest.approx(cpu_grad, rel=1e-2)


def test_tiny_dino_step_under_bf16_autocast_is_close():
    fp32_loss, _ = _tiny_step("cuda")
    bf16_loss, bf16_grad = _tiny_step("cuda", torch.bfloat16)
    assert bf16_grad == bf16_grad and bf16_grad > 0  # finite
    assert bf16_loss == pytest.approx(fp32_loss, rel=0.05)


def _env() -> dict[str, str]:
    """This checkout first on the path, keeping what the caller had (site folders, wheels)."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }


def _tbx_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tbx_train", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_run_with_ema_evaluates_both_in_fp32(tmp_path, amp):
    """--amp trains under autocast (fp16 with a scaler); evaluation, raw and EMA, stays fp32
    and lands in log.txt; the best-EMA checkpoint is written."""
    data, out = tmp_path / "synth", tmp_path / "run"
    assert _tbx_train("synth", str(data), cwd=tmp_path).returncode == 0
    run = _tbx_train(
        "run", "--preset", "tiny", "--data-root", str(data), "--output-dir", str(out),
        "--device", "cuda", "--epochs", "1", "--amp", amp, "--ema", cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    record = json.loads((out / "log.txt").read_text().splitlines()[-1])
    assert record["train_loss"] == record["train_loss"]  # finite, not NaN
    assert any(key.startswith("ema_test") for key in record), sorted(record)
    assert (out / "checkpoint_best_ema.pth").exists()


def test_tiny_training_run_on_cuda(tmp_path):
    """A real run on the GPU: 1 epoch of the tiny preset on synthetic data, evaluated, saved,
    and judged healthy (or warned, never failed) by the doctor."""
    data, out = tmp_path / "synth", tmp_path / "run"
    assert _tbx_train("synth", str(data), cwd=tmp_path).returncode == 0
    run = _tbx_train(
        "run", "--preset", "tiny", "--data-root", str(data), "--output-dir", str(out),
        "--device", "cuda", "--epochs", "1", cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Saved checkpoint" in run.stdout and (out / "checkpoint.pth").exists()
    record = json.loads((out / "log.txt").read_text().splitlines()[-1])
    assert all(v == v for v in record.values() if isinstance(v, float))  # no NaN
    log = tmp_path / "train_1.out"
    log.write_text(run.stdout)
    doctor = subprocess.run(
        [sys.executable, "-m", "tbx_doctor", "check", str(log), "--format", "json"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert json.loads(doctor.stdout)["verdict"] in ("healthy", "warning"), doctor.stdout[-2000:]
