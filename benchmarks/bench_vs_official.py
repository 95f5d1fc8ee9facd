"""CPU training step, tbx-train against the official DINO, same configuration and weights.

    TBX_OFFICIAL_DINO=/path/to/DINO python benchmarks/bench_vs_official.py \
        [--config tbx11k|tiny] [--size PX] [--batch 1] [--steps 3] [--rounds 3] [--threads 2]
        [--variants official tbx tbx-before tbx:grid_sample tbx:embedding_bag]

The official code is not part of this repository: point `--official` (or TBX_OFFICIAL_DINO) at an
existing IDEA-Research/DINO checkout; without one the benchmark says so and exits 0. The official
model runs its pure-PyTorch attention (`ms_deform_attn_core_pytorch`, no CUDA op; see
official_dino.py). Configurations: `tbx11k` is DINO-4scale R50 with 4 classes at 512 px; `tiny`
is the tiny preset (2+2 layers, 100 queries, 512-wide FFN) at 256 px, on ResNet-50 and 256 wide,
the smallest the official code builds. Both models get the same weights (ours, seed 0), the same
images and boxes, and a step is what each trainer does: forward with denoising, loss, backward,
clip at 0.1, AdamW. Variants:
- `official`: its model, parameter groups and torch's default AdamW;
- `tbx`: our trainer as it runs (allocator settings, its optimizer); `tbx:CORE` forces an
  attention core; `tbx-before`: no allocator settings and the single-tensor AdamW (the trainer
  before tbx_train/allocator.py).
Every run of a variant is its own process (its own peak RSS and page faults); variants are
interleaved round by round. Per step: wall time, CPU time (user + system), minor page faults
(the count of pages the kernel had to hand over: independent of the machine's load). Medians over
all timed steps of all rounds; peak RSS is the largest ru_maxrss (build included); the load
average is printed, as the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The official code builds no ResNet-18 and only a 256-wide transformer (its query sine
# embedding is 256 wide): `tiny` is the tiny preset with those two fields changed.
TINY_AS_OFFICIAL = {"backbone": "resnet50", "hidden_dim": 256}
# `tiny-preset` (ours only): the tiny preset itself, ResNet-18 and 128 wide, at its 128 px.
CONFIGS = {
    "tbx11k": ("tbx11k", {}, 512),
    "tiny": ("tiny", TINY_AS_OFFICIAL, 256),
    "tiny-preset": ("tiny", {}, 128),
}
BOXES = [[0.3, 0.4, 0.2, 0.3], [0.7, 0.5, 0.15, 0.25]]  # cx, cy, w, h; labels 1 and 3


def _model_config(name: str):
    from tbx_train.config import model_preset

    preset, overrides, _ = CONFIGS[name]
    return model_preset(preset, **overrides)


def _inputs(size: int, batch: int):
    import torch

    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=generator)
    masks = torch.zeros(batch, size, size, dtype=torch.bool)
    targets = [{"labels": torch.tensor([1, 3]), "boxes": torch.tensor(BOXES)} for _ in range(batch)]
    return images, masks, targets


def _official_step(official: Path, config, weights: Path, size: int, batch: int):
    import torch
    from official_dino import load_official, nested, official_optimizer

    model, criterion, args = load_official(official, config)
    model.load_state_dict(torch.load(weights), strict=True)
    model.train()
    criterion.train()
    optimizer = official_optimizer(official, model, args)
    images, masks, targets = _inputs(size, batch)

    def step() -> None:  # the official engine.train_one_epoch, one iteration
        outputs = model(nested(images, masks), targets)
        loss_dict = criterion(outputs, targets)
        weights = criterion.weight_dict
        loss = sum(loss_dict[k] * weights[k] for k in loss_dict if k in weights)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()

    return step


def _tbx_step(variant: str, config, weights: Path, size: int, batch: int):
    import torch

    from tbx_train.allocator import configure_allocator
    from tbx_train.config import TrainConfig
    from tbx_train.engine import TrainContext, optimizer_step
    from tbx_train.model import build_dino, deformable_attention
    from tbx_train.optim import build_optimizer, build_param_groups

    train = TrainConfig()
    if variant != "tbx-before":
        configure_allocator()  # as run_training does at start-up
    if ":" in variant:
        core = getattr(deformable_attention, f"sample_by_{variant.split(':')[1]}")
        deformable_attention.multi_scale_deformable_attention = core
    model, criterion, _ = build_dino(config)
    model.load_state_dict(torch.load(weights), strict=True)
    if variant == "tbx-before":
        groups = build_param_groups(model, train)
        optimizer = torch.optim.AdamW(groups, lr=train.lr, weight_decay=train.weight_decay)
    else:
        optimizer = build_optimizer(model, train)
    model.train()
    criterion.train()
    ctx = TrainContext(model, criterion, optimizer, torch.device("cpu"))
    batch_ = _inputs(size, batch)
    return lambda: optimizer_step(ctx, [batch_], seeds=[0])


def _child(args: argparse.Namespace) -> dict:
    """One variant in this process: `warmup` steps, then `steps` measured steps."""
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = _model_config(args.config)
    if args.child == "export":
        from tbx_train.model import build_dino

        torch.save(build_dino(config)[0].state_dict(), args.weights)
        return {}
    if args.child == "official":
        step = _official_step(args.official, config, args.weights, args.size, args.batch)
    else:
        step = _tbx_step(args.child, config, args.weights, args.size, args.batch)
    rows = []
    for _ in range(args.warmup + args.steps):
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        step()
        after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        rows.append(
            [wall, cpu, after.ru_stime - before.ru_stime, after.ru_minflt - before.ru_minflt]
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"steps": rows[args.warmup :], "peak_rss_gib": peak, "load": os.getloadavg()[0]}


def _run_child(args: argparse.Namespace, variant: str, weights: Path) -> dict:
    command = [sys.executable, __file__, "--child", variant, "--weights", str(weights)]
    command += ["--config", args.config, "--size", str(args.size), "--batch", str(args.batch)]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    command += ["--threads", str(args.threads)]
    command += ["--official", str(args.official)] if args.official else []
    # Passive OpenMP waiting for every variant: spinning threads on a shared CPU burn the time
    # being measured. Our checkout first on the path, then this folder (official_dino.py).
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")])
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{variant} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _summary(variant: str, runs: list[dict], reference: dict | None) -> dict:
    steps = [row for run in runs for row in run["steps"]]
    summary = {
        "variant": variant,
        "steps": len(steps),
        "wall_s": statistics.median(r[0] for r in steps),
        "cpu_s": statistics.median(r[1] for r in steps),
        "sys_s": statistics.median(r[2] for r in steps),
        "minor_faults": statistics.median(r[3] for r in steps),
        "peak_rss_gib": max(run["peak_rss_gib"] for run in runs),
        "load": statistics.median(run["load"] for run in runs),
    }
    if reference:
        summary["wall_vs_official"] = summary["wall_s"] / reference["wall_s"]
        summary["cpu_vs_official"] = summary["cpu_s"] / reference["cpu_s"]
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()}


def _print(summary: dict) -> None:
    ratio = ""
    if "wall_vs_official" in summary:
        ratio = (
            f" = {summary['wall_vs_official']:.2f}x / {summary['cpu_vs_official']:.2f}x official"
        )
    print(
        f"{summary['variant']:>18}: step wall {summary['wall_s']:.3f} s, CPU {summary['cpu_s']:.3f}"
        f" s (system {summary['sys_s']:.3f}){ratio}; {summary['minor_faults']:.0f} minor faults"
        f"/step; peak RSS {summary['peak_rss_gib']:.2f} GiB; load {summary['load']:.1f} "
        f"({summary['steps']} steps)",
        flush=True,
    )


def _official_problem(args: argparse.Namespace) -> str | None:
    """Why the official variant cannot run (None: it can, or it is not asked for)."""
    if "official" not in args.variants:
        return None
    if args.official is None:
        return "no official DINO checkout given"
    if args.config == "tiny-preset":
        return "the official code builds no ResNet-18 / 128-wide model (use --config tiny)"
    from official_dino import check_checkout

    return check_checkout(args.official)


def _parent(args: argparse.Namespace) -> int:
    problem = _official_problem(args)
    if problem:
        print(f"skipped: {problem}; pass --official DIR or set TBX_OFFICIAL_DINO")
        return 0
    print(
        f"{args.config} at {args.size} px, batch {args.batch}, {args.threads} threads; load "
        f"average {os.getloadavg()[0]:.1f} at start"
    )
    runs: dict[str, list[dict]] = {variant: [] for variant in args.variants}
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "weights.pth"
        _run_child(args, "export", weights)
        for round_ in range(args.rounds):
            shift = round_ % len(args.variants)  # rotate the order: no variant always first
            for variant in args.variants[shift:] + args.variants[:shift]:
                runs[variant].append(_run_child(args, variant, weights))
                cpu = statistics.median(r[1] for r in runs[variant][-1]["steps"])
                load = os.getloadavg()[0]  # progress lines: a long run shows what it has
                print(f"  round {round_ + 1} {variant}: CPU/step {cpu:.3f} s, load {load:.1f}")
    reference = _summary("official", runs["official"], None) if "official" in runs else None
    summaries = [_summary(v, runs[v], None if v == "official" else reference) for v in runs]
    for summary in summaries:
        _print(summary)
    print(
        json.dumps(
            {
                "config": args.config,
                "size": args.size,
                "batch": args.batch,
                "threads": args.threads,
                "results": summaries,
            }
        )
    )
    return 0


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # progress lines as they come, also in a pipe
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--official",
        type=Path,
        default=os.environ.get("TBX_OFFICIAL_DINO"),
        help="IDEA-Research/DINO checkout (default: $TBX_OFFICIAL_DINO)",
    )
    parser.add_argument("--config", choices=sorted(CONFIGS), default="tbx11k")
    parser.add_argument("--size", type=int, help="square image side in pixels")
    parser.add_argument("--batch", type=int, default=1, help="images per step")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run, after 1 warm-up")
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed steps first (the heap reaches its size)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of each variant")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--variants", nargs="+", default=["official", "tbx", "tbx-before"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--weights", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.size = args.size or CONFIGS[args.config][2]
    if args.child:
        print(json.dumps(_child(args)))
        return 0
    return _parent(args)


if __name__ == "__main__":
    sys.exit(main())
