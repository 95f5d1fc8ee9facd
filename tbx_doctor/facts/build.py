"""Build `JobFacts` for one job from its scanned logs and output directory."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from tbx_doctor.facts import arguments
from tbx_doctor.facts.coverage import coverage, still_growing
from tbx_doctor.facts.job import Decision, EpochFacts, JobFacts
from tbx_doctor.facts.ranks import rank_facts
from tbx_doctor.facts.source_run import SourceContext, SourceFinder
from tbx_doctor.reading import patterns as P
from tbx_doctor.reading.job_files import JobFiles, relocate
from tbx_doctor.reading.logscan import EpochProgress, Line, LogScan, scan_log
from tbx_doctor.reading.run_dir import (
    EpochRecord,
    OutputDir,
    looks_like_output_dir,
    parse_duration,
    read_output_dir,
)


def merge_events(scans: list[LogScan]) -> tuple[dict[str, tuple[Line, ...]], dict[str, int]]:
    """Events of all files of the job, per kind, in file order."""
    signals: dict[str, list[Line]] = {}
    counts: dict[str, int] = {}
    for scan in scans:
        for kind, events in scan.events.items():
            signals.setdefault(kind, []).extend(events.all())
            counts[kind] = counts.get(kind, 0) + events.count
    return {k: tuple(v) for k, v in signals.items()}, counts


SLURM_ENDINGS = ("time_limit", "cancelled", "preempted", "node_fail")


def slurm_end(signals: dict[str, tuple[Line, ...]]) -> tuple[Line | None, datetime | None]:
    """SLURM's cancellation line and its `CANCELLED AT <iso time>` (no End Time follows it)."""
    for kind in SLURM_ENDINGS:
        for line in signals.get(kind, ()):
            match = P.CANCELLED_AT.search(line.text)
            if match:
                try:
                    return line, datetime.fromisoformat(match.group(1))
                except ValueError:
                    return line, None
    return None, None


def parse_clock(line: Line | None) -> datetime | None:
    """ "Start Time: Mon Nov 17 10:48:03 MST 2025" (date(1) output) or ISO -> naive datetime."""
    if line is None or ":" not in line.text:
        return None
    value = line.text.split(":", 1)[1].strip()
    words = [w for w in value.split() if not (w.isalpha() and w.isupper() and len(w) <= 5)]
    for fmt, text in (("%a %b %d %H:%M:%S %Y", " ".join(words)), ("%Y-%m-%dT%H:%M:%S", value)):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def decisions_from(signals: dict[str, tuple[Line, ...]], args: dict[str, str]) -> list[Decision]:
    """The path lines the job printed (tbx-train, wrapper banners, DINO's own args)."""
    found: list[Decision] = []
    for line in signals.get("resume", ()):
        source = line.text.split("checkpoint: ", 1)[1].strip()
        epoch_match = P.CKPT_EPOCH.search(source)
        source_epoch = None
        if epoch_match:
            source = source[: epoch_match.start()].strip()
            epoch, iteration = int(epoch_match.group(1)), epoch_match.group(2)
            # Mid-epoch form names the epoch being continued; the plain form the finished one.
            source_epoch = epoch - 1 if iteration and int(iteration) > 0 else epoch
        found.append(Decision("resume", source, line, source_epoch))
    for line in signals.get("pretrained", ()):
        found.append(Decision("pretrained", line.text.split(": ", 1)[1].strip(), line))
    for line in signals.get("scratch", ()):
        found.append(Decision("fresh", None, line))
    found += iteration_start_decisions(signals)
    found += arguments.decisions_from_args(args)
    return found


def iteration_start_decisions(signals: dict[str, tuple[Line, ...]]) -> list[Decision]:
    """detectron2 prints no decision line: `Starting training from iteration N` with N > 0 is a
    resume from the file the last `[Checkpointer] Loading from PATH` before it names; with
    N = 0 that file held initial weights (pretrained)."""
    for start in signals.get("start_training", ()):
        match = P.D2_START.search(start.text)
        if match is None:
            continue
        loads = [
            (line, found.group(1))
            for line in signals.get("ckpt_loading", ())
            if (line.file, line.line) < (start.file, start.line)
            and (found := P.D2_LOADING.search(line.text))
        ]
        load_line, source = loads[-1] if loads else (None, None)
        if int(match.group(1)) > 0:
            return [Decision("resume", source, start)]
        return [Decision("pretrained", source, load_line)] if load_line else []
    return []


def _epoch_facts(progress: EpochProgress, output: OutputDir | None, aps: dict) -> EpochFacts:
    record = None
    if output is not None:
        record = next((r for r in output.records if r.epoch == progress.epoch), None)
    seconds = None
    if progress.total_time is not None:
        seconds = parse_duration(progress.total_time.text.split("Total time:", 1)[1].split("(")[0])
    ap_reading = aps.get(progress.epoch)
    ap = ap_reading.value if ap_reading else (record.ap if record else None)
    ap_line = ap_reading.line if ap_reading else (record.line if record and record.ap else None)
    return EpochFacts(
        epoch=progress.epoch,
        iterations=progress.total,
        first_iter=progress.first_iter,
        last_iter=progress.last_iter,
        finished=progress.finished,
        loss_first=progress.loss_first,
        loss_mean=progress.loss_last
        if progress.loss_last is not None
        else (record.train_loss if record else None),
        loss_peak=progress.loss_peak,
        seconds=seconds,
        ap=ap,
        first=progress.first,
        last=progress.last,
        peak=progress.loss_peak_line,
        ap_line=ap_line,
        time_line=progress.total_time,
    )


def epochs_from(scans: list[LogScan], output: OutputDir | None) -> tuple[EpochFacts, ...]:
    merged: dict[int, EpochProgress] = {}
    aps = {}
    for scan in scans:
        for epoch, progress in scan.epochs.items():
            merged.setdefault(epoch, progress)
        aps.update({r.epoch: r for r in scan.aps if r.epoch is not None})
    if not merged and not scans and output is not None:
        # An output directory given alone: its log.txt is the only record of the epochs.
        return tuple(_record_facts(r) for r in sorted(output.records, key=lambda r: r.epoch))
    return tuple(_epoch_facts(merged[e], output, aps) for e in sorted(merged))


def _record_facts(record: EpochRecord) -> EpochFacts:
    return EpochFacts(
        epoch=record.epoch,
        iterations=None,
        first_iter=-1,
        last_iter=-1,
        finished=True,
        loss_first=None,
        loss_mean=record.train_loss,
        loss_peak=None,
        seconds=record.seconds,
        ap=record.ap,
        first=record.line,
        last=record.line,
        ap_line=record.line,
    )


def find_output_dir(job: JobFiles, args: dict[str, str], signals: dict) -> Path | None:
    """The job's own output directory when it exists locally (given, printed, or relocated)."""
    if job.output_dir is not None:
        return job.output_dir
    printed = args.get("output_dir")
    if not printed and signals.get("output_dir"):
        printed = signals["output_dir"][0].text.split(":", 1)[1].strip()
    if not printed or not job.logs:
        return _beside(job)
    root_lines = signals.get("project_root")
    root = root_lines[0].text.split(":", 1)[1].strip() if root_lines else None
    for candidate in relocate(printed, job.logs[0].parent, root):
        if candidate.is_dir():
            return candidate
    return None


def _beside(job: JobFiles) -> Path | None:
    """A log kept inside its run's output directory: that directory's log.txt tells too."""
    folder = job.logs[0].parent if job.logs else None
    if folder is None or any(p.name == "log.txt" for p in job.logs):
        return None  # the log given is that log.txt (a text log under DINO's file name)
    return folder if looks_like_output_dir(folder) else None


def _first_value(lines: tuple[Line, ...]) -> str | None:
    return lines[0].text.split(":", 1)[1].strip().split()[0] if lines else None


def _id_in(lines: tuple[Line, ...], pattern) -> str | None:
    for line in lines:
        if match := pattern.search(line.text):
            return match.group(1)
    return None


def _job_id(job: JobFiles, signals: dict) -> str | None:
    """The job's SLURM id: printed by the job (banner, SLURM_JOB_ID=), by slurmstepd about the
    job, or in SLURM's file name; `Submitted batch job N` (sbatch's reply) last. Never stray
    digits of a file name."""
    ids = signals.get("job_id", ())
    own = tuple(line for line in ids if "Submitted batch job" not in line.text)
    kinds = (*SLURM_ENDINGS, "host_oom", "job_id")
    slurm = tuple(line for kind in kinds for line in signals.get(kind, ()))
    return (
        _id_in(own, P.PRINTED_JOB_ID)
        or _id_in(slurm, P.SLURM_LINE_JOB_ID)
        or job.job_id
        or _id_in(ids, P.PRINTED_JOB_ID)
    )


def _identity(job: JobFiles, signals: dict) -> tuple[str | None, str | None]:
    job_id = _job_id(job, signals)
    node = _first_value(signals.get("node", ()))
    for kind in ("time_limit", "cancelled", "preempted", "node_fail"):
        for line in signals.get(kind, ()):
            parts = line.text.split(" ON ", 1)
            node = node or (parts[1].split()[0] if len(parts) == 2 else None)
    return job_id, node


def _training_seconds(line: Line) -> float | None:
    """`Training time 0:00:00` (DINO) or `Total training time: 2:03:04 (0:01:02 on hooks)`."""
    match = P.DURATION.search(line.text.split("time", 1)[1])
    return parse_duration(match.group(0)) if match else None


def _time_facts(signals: dict[str, tuple[Line, ...]]) -> dict:
    start, end = (signals.get(k, (None,))[0] for k in ("start_time", "end_time"))
    t0, t1 = parse_clock(start), parse_clock(end)
    slurm_line, slurm_time = slurm_end(signals)
    # Cluster banners print local time without a zone and SLURM prints local ISO time.
    t1 = t1 or slurm_time
    train_time = signals.get("training_time", ())
    return {
        "start": start,
        "end": end,
        "slurm_end": slurm_line,
        "wall_seconds": (t1 - t0).total_seconds() if t0 and t1 else None,
        "training_time": _training_seconds(train_time[-1]) if train_time else None,
        "training_time_line": train_time[-1] if train_time else None,
    }


def _arg_facts(args: arguments.Args, signals: dict[str, tuple[Line, ...]]) -> dict:
    return {
        "eval_only": _eval_only(args, signals),
        "decisions": tuple(decisions_from(signals, args)),
        "plan": dict(args.values) if signals.get("run_plan") else {},
        "plan_line": (signals.get("run_plan") or (None,))[0],
        "epochs_planned": args.get_int("epochs"),
        "epochs_planned_line": args.lines.get("epochs"),
        "strategy": arguments.strategy_from(args, signals),
    }


def _scan_facts(scans: list[LogScan], signals: dict[str, tuple[Line, ...]]) -> dict:
    return {
        "fresh_claims": signals.get("fresh_claim", ()),
        "start_training": (signals.get("start_training") or (None,))[0],
        "success_claims": signals.get("success", ()),
        "truncated": tuple(f"{s.path}: {s.status.problem}" for s in scans if s.status.truncated),
        "replaced_lines": sum(s.replaced_lines for s in scans),
        "last_phase": next((s.last_phase for s in scans if s.last_phase), ""),
        "last_line": scans[0].last_line if scans else None,
        "iterations_seen": sum(p.lines for s in scans for p in s.epochs.values()),
        "loss_trend": max((s.loss_trend for s in scans), key=lambda t: t.ratio, default=None),
        "eval_ap": next((r.value for s in scans for r in s.aps if r.epoch is None), None),
    }


def build_facts(job: JobFiles, given: list[Path], now: float | None = None) -> JobFacts:
    """Scan the job's files and assemble its facts (the rules' only input)."""
    scans = [scan_log(p, str(p)) for p in job.logs]
    signals, counts = merge_events(scans)
    out_path = find_output_dir(job, arguments.args_from(signals, None, None).values, signals)
    output = read_output_dir(out_path) if out_path else None
    config_line = None
    if output and output.config_file:
        config_line = Line(str(output.config_file), 0, "config_args_all.json")
    args = arguments.args_from(signals, output.config if output else None, config_line)
    job_id, node = _identity(job, signals)
    facts = JobFacts(
        files=tuple(str(p) for p in job.logs) + ((str(out_path),) if out_path else ()),
        job_id=job_id,
        node=node,
        signals=signals,
        counts=counts,
        epochs=epochs_from(scans, output),
        missing=tuple(job.missing),
        output_dir=str(out_path) if out_path else None,
        **_time_facts(signals),
        **_arg_facts(args, signals),
        **_scan_facts(scans, signals),
    )
    facts = replace(
        facts,
        still_growing=still_growing(job, facts.ended, now or time.time(), facts.last_line),
        **coverage(job, scans, signals, output),
        ranks=rank_facts(signals, facts.strategy.world_size if facts.strategy else None),
    )
    return _with_source(facts, job, given, signals)


def _eval_only(args: arguments.Args, signals: dict) -> Line | None:
    if args.flag("eval"):
        return args.lines.get("eval")
    banner = signals.get("eval_banner", ())
    return banner[0] if banner else None


def _with_source(facts: JobFacts, job: JobFiles, given: list[Path], signals: dict) -> JobFacts:
    decision = facts.decision
    if decision is None or decision.mode != "resume" or facts.eval_only:
        return facts
    root = _first_value(signals.get("project_root", ()))
    anchor = job.logs[0].parent if job.logs else (job.output_dir.parent if job.output_dir else None)
    source = SourceFinder().find(decision, SourceContext(anchor, root, given))
    facts = replace(facts, source=source)
    if not job.logs and source.epoch is not None:
        # log.txt of a resumed run is cumulative: keep the epochs this run trained itself.
        facts = replace(facts, epochs=tuple(e for e in facts.epochs if e.epoch > source.epoch))
    return facts
