"""The run behind `tbx-train run`: from a RunConfig to trained, evaluated, saved epochs.

Order: distributed init -> plan (refuses before anything heavy) -> data report -> build model ->
load (resume / pretrained) -> `plan.plan_log_lines` (decision, accepted strategy change, `Run
plan:`) -> `Start training` -> epochs (train, evaluate, save `checkpoint.pth`, log.txt line) ->
`Training time H:MM:SS`. A stop requested during start-up is honoured after the first optimizer
step, like any other: a mid-epoch checkpoint in this run's folder, then exit 75.
Only rank 0 prints and saves; every rank raises on errors.

Exit outcomes (the CLI maps them): completed or stopped by --max-steps (0); non-finite loss
(NonFiniteLossError, 1); bad config or data (2); plan refused (3); stop request (75).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tbx_train.allocator import configure_allocator
from tbx_train.checkpoint import (
    best_ema_path,
    best_path,
    dataset_facts,
    epoch_path,
    latest_path,
    save_checkpoint,
)
from tbx_train.config import ConfigError, RunConfig
from tbx_train.config_files import write_resolved
from tbx_train.distributed import DistInfo, init_distributed
from tbx_train.engine import EpochPlan, EvalResult, TrainContext, evaluate, train_one_epoch
from tbx_train.logs import (
    MetricLogger,
    ProgressBar,
    append_epoch_record,
    epoch_record,
    format_duration,
    is_interactive,
)
from tbx_train.plan import (
    RunPlan,
    decide_plan,
    plan_log_lines,
    request_from_config,
)
from tbx_train.pretrained import load_pretrained
from tbx_train.run_data import RunData, build_run_data, coco_scorer
from tbx_train.sampler import StepBatchSampler
from tbx_train.signals import (
    EXIT_REQUEUE,
    StopRequest,
    format_interrupt_line,
)
from tbx_train.training_state import (
    TrainingState,
    build_training_state,
    checkpoint_payload,
    restore_state,
)


@dataclass
class RunOutcome:
    """What the run did; `exit_code` is 0 or 75 (errors raise)."""

    plan: RunPlan
    exit_code: int = 0
    epochs_trained: list[int] = field(default_factory=list)
    ap_per_epoch: dict[int, list[float]] = field(default_factory=dict)
    checkpoint: Path | None = None
    stop_reason: str | None = None


@dataclass
class Session:
    """Per-run handles shared by the epoch loop's helpers."""

    config: RunConfig
    state: TrainingState
    data: RunData
    ctx: TrainContext
    plan: RunPlan
    rank: int
    world_size: int
    write: Callable[[str], None]
    stop_requested: Callable[[], str | None]  # the signal's name once a stop was requested
    # Best validation AP of the run so far, raw and EMA weights: kept in every checkpoint's
    # metrics (best_AP, best_ema_AP) so that a resumed job compares with the earlier jobs.
    best: dict[str, float] = field(default_factory=lambda: {"AP": -1.0, "ema_AP": -1.0})
    finished: Callable[[], None] = lambda: None  # called once the final checkpoint is saved
    interactive: bool = False  # print through a progress bar (stdout is a terminal)
    step_limit: int | None = None  # global step at which --max-steps stops this job

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def output_dir(self) -> Path:
        return Path(self.config.train.output_dir)


def plan_run(config: RunConfig, world_size: int) -> RunPlan:
    """The lifecycle decision for this config (raises PlanRefused)."""
    return decide_plan(request_from_config(config, world_size))


def _load_weights(
    state: TrainingState, plan: RunPlan, write: Callable[[str], None]
) -> dict[str, float]:
    """Apply the plan's source: resume restores the state (returns its best APs), pretrained
    the weights only."""
    if plan.mode == "resume" and plan.source is not None:
        payload, lines = restore_state(state, plan.source)
        for line in lines:
            write(line)
        metrics = payload.get("metrics") or {}
        return {"AP": metrics.get("best_AP", -1.0), "ema_AP": metrics.get("best_ema_AP", -1.0)}
    if plan.mode == "pretrained" and plan.source is not None:
        for line in load_pretrained(state.model, plan.source).summary_lines():
            write(line)
        if state.ema is not None:
            state.ema.load_state_dict(state.model.state_dict())
    return {"AP": -1.0, "ema_AP": -1.0}


def _check_world_size(config: RunConfig, world_size: int) -> None:
    expected = config.train.world_size
    if expected is not None and expected != world_size:
        raise ConfigError(
            f"preset {config.preset!r} expects world_size={expected} processes but the launcher "
            f"started {world_size}; launch {expected} (torchrun --nproc-per-node {expected}) or "
            "choose a preset for this layout"
        )


def _wrap(model: torch.nn.Module, dist: DistInfo) -> torch.nn.Module:
    """DDP when distributed. Unused parameters are expected: a batch without boxes has no
    denoising part, so `label_enc` gets no gradient on that rank."""
    if not dist.distributed:
        return model
    device_ids = [torch.device(dist.device).index] if dist.device.startswith("cuda") else None
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=device_ids, find_unused_parameters=True
    )


def start_session(
    config: RunConfig, write: Callable[[str], None], stop: StopRequest | None = None
) -> Session:
    """Everything up to `Start training`: plan, data report, model, weights, plan line."""
    config.validate()
    config.data.validate()
    dist = init_distributed(config.train.device)
    rank, world_size = dist.rank, dist.world_size
    _check_world_size(config, world_size)
    say = write if rank == 0 else (lambda _line: None)
    plan = plan_run(config, world_size)
    if rank == 0:  # the resolved config beside the checkpoints (config.toml reruns it)
        write_resolved(config, Path(config.train.output_dir))
    data = build_run_data(config, rank, world_size)
    for line in data.report_lines():
        say(line)
    device = torch.device(dist.device)
    state = build_training_state(config, device)
    best = _load_weights(state, plan, say)
    ctx = TrainContext(
        model=_wrap(state.model, dist),
        criterion=state.criterion,
        optimizer=state.optimizer,
        device=device,
        amp_dtype=state.amp_dtype,
        scaler=state.scaler,
        clip_max_norm=config.train.clip_max_norm,
        ema=state.ema,
        world_size=world_size,
        rank=rank,
        seed=config.train.seed,
    )
    for line in plan_log_lines(plan):  # decision, any accepted strategy change, `Run plan:`
        say(line)
    # A collective on every rank after each step, so that all ranks stop after the same one.
    stop_requested = (lambda: stop.stop_signal(device)) if stop else (lambda: None)
    session = Session(config, state, data, ctx, plan, rank, world_size, say, stop_requested, best)
    if stop:
        session.finished = stop.ignore_late
    session.interactive = write is print and is_interactive()
    max_steps = config.train.max_steps  # counted from this job's start, resumed or not
    session.step_limit = None if max_steps is None else state.global_step + max_steps
    return session


def _logger(session: Session, with_lr: bool = True) -> MetricLogger:
    cuda = session.ctx.device.type == "cuda"
    # A bar only for a person watching the console; the test/caller's own writer gets lines.
    bar = ProgressBar() if session.is_main and session.interactive else None
    return MetricLogger(
        session.config.train.print_freq, session.write, cuda, with_lr=with_lr, progress=bar
    )


def _evaluate(session: Session, module: torch.nn.Module | None = None) -> EvalResult:
    data = session.data
    scorer = coco_scorer(data.val_json, session.write) if session.is_main else None
    return evaluate(
        session.ctx,
        session.state.postprocessor,
        data.val_loader,
        len(data.val_loader),
        _logger(session, with_lr=False),
        score=scorer,
        is_main=session.is_main,
        module=module,
    )


def _save(session: Session, epoch: int, next_iteration: int, metrics: dict) -> Path:
    """checkpoint.pth (+ checkpointNNNN.pth at the interval, + the best and best-EMA ones when
    this epoch beat every earlier one of the run) on rank 0; returns checkpoint.pth."""
    path = latest_path(session.output_dir)
    if not session.is_main:
        return path
    improved = [k for k in ("AP", "ema_AP") if metrics.get(k, -1.0) > session.best[k]]
    session.best.update({k: metrics[k] for k in improved})
    metrics = {**metrics, "best_AP": session.best["AP"], "best_ema_AP": session.best["ema_AP"]}
    payload = checkpoint_payload(
        session.state,
        session.config,
        world_size=session.world_size,
        epoch=epoch,
        next_iteration=next_iteration,
        dataset=dataset_facts(
            Path(session.data.train_json), len(session.data.train_set), session.data.categories
        ),
        metrics=metrics,
    )
    save_checkpoint(path, payload)
    interval = session.config.train.checkpoint_interval
    if next_iteration == 0 and (epoch + 1) % interval == 0:
        save_checkpoint(epoch_path(session.output_dir, epoch), payload)
    for key in improved:
        target = best_path if key == "AP" else best_ema_path
        save_checkpoint(target(session.output_dir), payload)
    return path


def _train_epoch(session: Session, epoch: int, start_iteration: int):
    data, state = session.data, session.state
    data.train_set.set_epoch(epoch)
    sampler: StepBatchSampler = data.train_sampler
    sampler.set_epoch(epoch, start_iteration)
    plan = EpochPlan(
        epoch=epoch,
        iterations=len(sampler),
        grad_accum=session.config.train.grad_accum,
        start_iteration=start_iteration,
        global_step=state.global_step,
        max_steps=session.step_limit,
        stop_requested=session.stop_requested,
    )
    result = train_one_epoch(session.ctx, data.train_loader, plan, _logger(session))
    state.global_step = result.global_step
    return result


def _scores(result: EvalResult | None, prefix: str = "") -> dict[str, float]:
    """AP, AP50 and the FROC numbers of one evaluation, for the checkpoint's metrics."""
    if result is None or not result.coco_stats:
        return {}
    coco = result.coco_stats
    scores = {f"{prefix}AP": coco[0], f"{prefix}AP50": coco[1]}
    scores.update(
        {f"{prefix}{k}": float(v) for k, v in result.froc.items() if isinstance(v, float)}
    )
    return scores


def _finish_epoch(session: Session, epoch: int, train_stats: dict, seconds: float) -> list:
    """Schedule step, evaluation when due (the EMA weights too), checkpoints, log.txt line;
    returns the COCO stats of the trained weights."""
    session.state.lr_scheduler.step()
    train, ema = session.config.train, session.state.ema
    due = (epoch + 1) % train.eval_interval == 0 or epoch + 1 == train.epochs
    result = _evaluate(session) if due else None
    ema_result = _evaluate(session, ema.module) if due and ema is not None else None
    metrics = {**_scores(result), **_scores(ema_result, "ema_")}
    path = _save(session, epoch, 0, metrics)
    session.write(f"Saved checkpoint: {path} (epoch {epoch})")
    if session.is_main:
        coco = result.coco_stats if result else None
        extra: dict[str, object] = {
            f"test_{k}": v for k, v in (result.froc if result else {}).items()
        }
        if ema_result is not None:  # official keys: ema_test_*, ema_test_coco_eval_bbox
            extra.update({f"ema_test_{k}": v for k, v in ema_result.stats.items()})
            extra.update({f"ema_test_{k}": v for k, v in ema_result.froc.items()})
            if ema_result.coco_stats:
                extra["ema_test_coco_eval_bbox"] = [float(x) for x in ema_result.coco_stats]
        extra.update({"best_AP": session.best["AP"], "best_ema_AP": session.best["ema_AP"]})
        record = epoch_record(
            train_stats, result.stats if result else {}, coco, epoch,
            session.state.n_parameters, seconds, extra,
        )  # fmt: skip
        append_epoch_record(session.output_dir, record)
    return (result.coco_stats if result else None) or []


def _stop_early(session: Session, outcome: RunOutcome, epoch: int, result) -> None:
    """A partial epoch: save the position so a resume continues at the next micro-batch."""
    path = _save(session, epoch - 1, result.next_iteration, {})
    outcome.checkpoint, outcome.stop_reason = path, result.stop_reason
    position = f"(epoch {epoch}, iteration {result.next_iteration})"
    if result.stop_reason == "max_steps":
        session.write(
            f"Stopped by --max-steps {session.config.train.max_steps} at global step "
            f"{result.global_step}: saved checkpoint {path} {position}"
        )
    else:
        _interrupted(session, outcome, epoch, result.next_iteration)


def _interrupted(session: Session, outcome: RunOutcome, epoch: int, iteration: int) -> None:
    outcome.exit_code = EXIT_REQUEUE
    signal_name = session.stop_requested() or "stop request"
    path = str(outcome.checkpoint)
    session.write(format_interrupt_line(signal_name, path, epoch, iteration))


def train_run(session: Session) -> RunOutcome:
    """The epoch loop from the plan's start; prints `Start training` and `Training time`."""
    outcome = RunOutcome(plan=session.plan)
    # A stop requested during start-up is honoured after the first optimizer step: the job then
    # saves into its own run folder, where the chain's next job looks for its resume point.
    session.write("Start training")
    started = time.perf_counter()
    start_iteration = session.plan.start_iteration
    for epoch in range(session.plan.start_epoch, session.config.train.epochs):
        epoch_started = time.perf_counter()
        result = _train_epoch(session, epoch, start_iteration)
        start_iteration = 0
        if not result.completed:
            _stop_early(session, outcome, epoch, result)
            break
        seconds = time.perf_counter() - epoch_started
        outcome.ap_per_epoch[epoch] = _finish_epoch(session, epoch, result.stats, seconds)
        outcome.epochs_trained.append(epoch)
        outcome.checkpoint = latest_path(session.output_dir)
        if session.step_limit is not None and session.state.global_step >= session.step_limit:
            outcome.stop_reason = "max_steps"
            break
        if session.stop_requested() and epoch + 1 < session.config.train.epochs:
            _interrupted(session, outcome, epoch + 1, 0)
            break
    session.write(f"Training time {format_duration(time.perf_counter() - started)}")
    session.finished()  # every path out of the loop saved: late stop signals are ignored now
    return outcome


def run_training(
    config: RunConfig,
    write: Callable[[str], None] = print,
    stop: StopRequest | None = None,
) -> RunOutcome:
    """The whole run; raises ConfigError, DataError, CheckpointError, PlanRefused or
    NonFiniteLossError (the CLI maps them to exit codes)."""
    configure_allocator()  # before the model's first allocations; see tbx_train/allocator.py
    torch.manual_seed(config.train.seed)
    return train_run(start_session(config, write, stop))
