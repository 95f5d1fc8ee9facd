"""Where a resumed job's checkpoint came from, and what that run had done.

The source checkpoint's epoch and plan can be proved by (in order): the job's own log when it
states them (tbx-train's `Run plan:` / `Resuming from checkpoint: P (epoch E)`), the source
job's log (a sibling file `*_<jobid>.out[.gz]`), or the source run's output directory
(`log.txt`, `config_args_all.json`), or the checkpoint file itself when it is here (read
statically by `tbx_doctor.checkpoint`: no pickled code runs, no tensor data is loaded). Each
reader returns a partial `SourceRun` or None; `SourceFinder.readers` lists them in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from tbx_doctor.errors import DoctorError
from tbx_doctor.facts import arguments
from tbx_doctor.facts.job import Decision, SourceRun, Strategy
from tbx_doctor.reading.job_files import find_sibling_logs, relocate
from tbx_doctor.reading.logscan import Line, scan_log
from tbx_doctor.reading.run_dir import read_output_dir

# Digits in a checkpoint's folder name: only a lead to look for that job's log, never a claim.
JOB_ID = re.compile(r"(?<![0-9])([0-9]+)(?![0-9])")

Reader = Callable[[SourceRun, "SourceContext"], SourceRun | None]


class SourceContext:
    """What a reader may use: the log's folder, the project root it printed, the given paths."""

    def __init__(self, log_dir: Path | None, project_root: str | None, given: list[Path]) -> None:
        self.log_dir = log_dir
        self.project_root = project_root
        self.given = given


def checkpoint_job_id(checkpoint: str) -> str | None:
    """SLURM job id in the checkpoint's folder name (`.../tbx11k_run_39543743/checkpoint.pth`)."""
    path = Path(checkpoint)
    for part in (path.parent.name, path.name, str(path)):
        ids = JOB_ID.findall(part)
        if ids:
            return ids[-1]
    return None


def from_sibling_log(source: SourceRun, ctx: SourceContext) -> SourceRun | None:
    """Scan the source job's own log: its last finished epoch and its planned epochs."""
    if source.job_id is None:
        return None
    folders = [ctx.log_dir] if ctx.log_dir else []
    logs = [p for p in find_sibling_logs(source.job_id, folders, ctx.given) if ".err" not in p.name]
    for log in logs:
        scan = scan_log(log, str(log))
        finished = [p for p in scan.epochs.values() if p.finished and p.epoch >= 0]
        if not finished:
            continue
        last = max(finished, key=lambda p: p.epoch)
        signals = {k: tuple(v.all()) for k, v in scan.events.items()}
        args = arguments.args_from(signals, None, None)
        evidence = [line for line in (last.last, last.total_time) if line is not None]
        epochs = args.get_int("epochs")
        if epochs is not None and "epochs" in args.lines:
            evidence.append(args.lines["epochs"])
        return replace(
            source,
            epoch=last.epoch,
            epochs_planned=epochs,
            origin=f"job {source.job_id}'s log",
            strategy=arguments.strategy_from(args, signals),
            evidence=tuple(evidence),
            iterations_per_epoch=last.total,
            iterations_line=last.last,
        )
    return None


def from_output_dir(source: SourceRun, ctx: SourceContext) -> SourceRun | None:
    """Read the source run's output directory (log.txt records, config_args_all.json)."""
    for folder in relocate(str(Path(source.checkpoint).parent), ctx.log_dir, ctx.project_root):
        if not (folder / "log.txt").is_file():
            continue
        out = read_output_dir(folder)
        last = out.last_epoch
        if last is None:
            continue
        epochs = out.config.get("epochs") if out.config else None
        evidence = [last.line]
        if isinstance(epochs, int) and out.config_file is not None:
            evidence.append(_config_line(out.config_file, "epochs", epochs))
        args = arguments.args_from({}, out.config, evidence[-1])
        return replace(
            source,
            epoch=last.epoch,
            epochs_planned=epochs if isinstance(epochs, int) else None,
            origin=f"output directory {folder}",
            strategy=arguments.strategy_from(args, {}),
            evidence=tuple(evidence),
        )
    return None


def local_checkpoint(source: SourceRun, ctx: SourceContext) -> Path | None:
    """The source checkpoint's file on this machine, if the printed path can be relocated."""
    remote = Path(source.checkpoint)
    # Relocate the run folder, not the file: "checkpoint.pth" alone names no run.
    for folder in relocate(str(remote.parent), ctx.log_dir, ctx.project_root):
        if (folder / remote.name).is_file():
            return folder / remote.name
    return None


def from_checkpoint(source: SourceRun, ctx: SourceContext) -> SourceRun | None:
    """Read the checkpoint's own metadata: last finished epoch, planned epochs, strategy.

    When it cannot prove the epoch, the returned SourceRun's `missing` says why (read once).
    """
    path = local_checkpoint(source, ctx) if source.checkpoint else None
    if path is None:
        note = f"the checkpoint itself ({source.checkpoint}: not found locally)"
        return replace(source, missing=(note,))
    from tbx_doctor.checkpoint import summarize_checkpoint  # stdlib only; loaded when needed

    try:
        summary = summarize_checkpoint(path)
    except DoctorError as error:
        note = f"a readable checkpoint ({path} exists but cannot be read: {error})"
        return replace(source, missing=(note,))
    if summary.unsafe_globals:
        unsafe = ", ".join(summary.unsafe_globals)
        note = f"a safe checkpoint ({path} references code outside the allow-list: {unsafe})"
        return replace(source, missing=(note,))
    if summary.epoch is None:
        return replace(source, missing=(f"the checkpoint's epoch ({path} does not record one)",))
    evidence = Line(
        str(path),
        0,
        f"checkpoint metadata: format={summary.format} epoch={summary.epoch} "
        f"epochs_planned={summary.epochs_planned} completed={summary.completed}",
    )
    strategy = Strategy(summary.batch_size, summary.grad_accum, summary.world_size, (evidence,))
    return replace(
        source,
        epoch=summary.epoch,
        epochs_planned=summary.epochs_planned,
        origin=f"the checkpoint {path}",
        strategy=strategy,
        evidence=(evidence,),
    )


def _config_line(path: Path, key: str, value: object) -> Line:
    """The line of a JSON config file that holds `"key": value` (for evidence)."""
    needle = f'"{key}": {value}'
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if needle in text:
                return Line(str(path), number, text.strip())
    return Line(str(path), 0, needle)


class SourceFinder:
    """Resolve the SourceRun of a resume decision by trying each reader in turn."""

    readers: tuple[tuple[str, Reader], ...] = (
        ("the source job's log (*_{job}.out[.gz] beside this log)", from_sibling_log),
        ("the source run's output directory ({dir}/log.txt)", from_output_dir),
        ("the checkpoint's metadata", from_checkpoint),
    )

    def find(self, decision: Decision, ctx: SourceContext) -> SourceRun:
        source = SourceRun(
            checkpoint=decision.source or "", job_id=checkpoint_job_id(decision.source or "")
        )
        if decision.source_epoch is not None:
            return replace(
                source,
                epoch=decision.source_epoch,
                origin="this job's own log",
                evidence=(decision.line,),
            )
        missing: list[str] = []
        for description, reader in self.readers:
            found = reader(source, ctx)
            if found is not None and found.epoch is not None:
                return found
            if found is not None and found.missing:  # the reader says why it proved nothing
                missing.extend(found.missing)
            else:
                job, folder = source.job_id or "?", Path(source.checkpoint).parent
                missing.append(description.format(job=job, dir=folder))
        return replace(source, missing=tuple(missing))
