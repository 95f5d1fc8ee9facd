"""`tbx-train run`: train DINO-4scale (single process, gradient accumulation, or torchrun/srun).

Examples:
    tbx-train run --preset tiny --data-root demo-output/synth --output-dir demo-output/run
    tbx-train run --preset tbx11k-1gpu --data-root /data/TBX11K --output-dir outputs/run1
    torchrun --nproc-per-node 2 -m tbx_train run --preset tbx11k-2gpu --data-root /data/TBX11K

The effective batch is batch_size x grad_accum x GPUs; the official DINO recipe uses 16 at lr
1e-4. Exit codes: 0 done (or --max-steps reached), 1 training failed (non-finite loss),
2 bad option/config/data, 3 plan refused, 75 stopped by a signal after saving (requeue).
"""

from __future__ import annotations

import sys

import typer

from tbx_train.commands import run_options as opt


def command(
    preset: opt.Preset = "tbx11k",
    data_root: opt.DataRoot = None,
    train_json: opt.TrainJson = None,
    val_json: opt.ValJson = None,
    image_root: opt.ImageRoot = None,
    output_dir: opt.OutputDir = None,
    epochs: opt.Epochs = None,
    batch_size: opt.BatchSize = None,
    grad_accum: opt.GradAccum = None,
    lr: opt.Lr = None,
    lr_backbone: opt.LrBackbone = None,
    lr_drop: opt.LrDrop = None,
    seed: opt.Seed = None,
    amp: opt.Amp = None,
    ema: opt.Ema = None,
    max_steps: opt.MaxSteps = None,
    print_freq: opt.PrintFreq = None,
    device: opt.Device = None,
    num_workers: opt.Workers = None,
    resume: opt.Resume = None,
    pretrained: opt.Pretrained = None,
    allow_strategy_change: opt.AllowStrategyChange = None,
) -> None:
    """Train (or resume) a run; prints DINO's log lines and saves a checkpoint every epoch."""
    options = dict(locals())
    code = execute(options)
    raise typer.Exit(code)


def execute(options: dict[str, object]) -> int:
    """Build the config, run, and map library errors to exit codes and one-line messages."""
    from tbx_train.signals import StopRequest

    # Before torch is imported (seconds): SLURM's warning during start-up must not kill the run.
    stop = StopRequest().install()
    from tbx_train.checkpoint import CheckpointError
    from tbx_train.config import ConfigError
    from tbx_train.data import DataError
    from tbx_train.distributed import DistributedSetupError, cleanup_distributed
    from tbx_train.engine import NonFiniteLossError
    from tbx_train.plan import PlanRefused
    from tbx_train.runner import run_training

    try:
        config = opt.build_run_config(options.pop("preset"), **options)
        return run_training(config, stop=stop).exit_code
    except PlanRefused as refused:
        print(refused.line(), flush=True)
        return 3
    except NonFiniteLossError as error:
        print(f"Training failed: {error}", file=sys.stderr, flush=True)
        return 1
    except (ConfigError, DataError, CheckpointError, DistributedSetupError) as error:
        print(f"Error: {error}", file=sys.stderr, flush=True)
        return 2
    finally:
        if not stop.late:  # after the final save, late signals stay ignored until the exit
            stop.restore()
        cleanup_distributed()
