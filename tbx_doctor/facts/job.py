"""Typed facts about one job, extracted from its files: the only input the rules see.

Every fact that a finding may cite carries the `Line` it came from. Facts never guess: a value
the files do not state is None, and what was looked for but not found is listed in `missing`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tbx_doctor.facts.ranks import RankFacts
from tbx_doctor.reading.logscan import ITERATIONS_ONLY, Line
from tbx_doctor.reading.records import LossTrend

Evidence = Line


@dataclass(frozen=True)
class Decision:
    """The path a run took, as a line printed it: fresh (scratch), pretrained or resume."""

    mode: str
    source: str | None
    line: Line
    source_epoch: int | None = None  # tbx-train prints it: "Resuming from checkpoint: P (epoch E)"


@dataclass(frozen=True)
class Strategy:
    """How one optimizer step was made: images per device, accumulation, devices."""

    batch_size: int | None = None
    grad_accum: int | None = None
    world_size: int | None = None
    evidence: tuple[Line, ...] = ()

    @property
    def effective_batch(self) -> int | None:
        if self.batch_size is None:
            return None
        return self.batch_size * (self.grad_accum or 1) * (self.world_size or 1)


@dataclass(frozen=True)
class SourceRun:
    """The run a resumed job continued from, as far as the available files prove it.

    epoch: last COMPLETED epoch (0-based) the checkpoint holds; epochs_planned: that run's plan.
    origin says which file proved them; missing names what was looked for and not found.
    """

    checkpoint: str
    job_id: str | None = None
    epoch: int | None = None
    epochs_planned: int | None = None
    strategy: Strategy | None = None
    origin: str = ""
    evidence: tuple[Line, ...] = ()
    missing: tuple[str, ...] = ()
    iterations_per_epoch: int | None = None  # N of its last finished epoch's "[i/N]"
    iterations_line: Line | None = None


@dataclass(frozen=True)
class EpochFacts:
    """One epoch this job trained (from its iteration lines, completed by log.txt if present)."""

    epoch: int
    iterations: int | None
    first_iter: int
    last_iter: int
    finished: bool
    loss_first: float | None
    loss_mean: float | None  # running average at the last line seen = the epoch's mean loss
    loss_peak: float | None
    seconds: float | None
    ap: float | None
    first: Line | None
    last: Line | None
    peak: Line | None = None
    ap_line: Line | None = None
    time_line: Line | None = None


@dataclass(frozen=True)
class JobFacts:
    """Everything known about one job. `signals` maps an event kind (see reading.patterns) to
    the lines that showed it; `counts` how many such lines there were in total."""

    files: tuple[str, ...]
    job_id: str | None = None
    node: str | None = None
    start: Line | None = None
    end: Line | None = None  # the job's own end banner ("End Time: ...")
    slurm_end: Line | None = None  # SLURM's cancellation line (time limit, scancel, ...)
    wall_seconds: float | None = None
    eval_only: Line | None = None
    decisions: tuple[Decision, ...] = ()
    fresh_claims: tuple[Line, ...] = ()
    plan: dict[str, str] = field(default_factory=dict)
    plan_line: Line | None = None
    epochs_planned: int | None = None
    epochs_planned_line: Line | None = None
    strategy: Strategy | None = None
    source: SourceRun | None = None
    start_training: Line | None = None
    epochs: tuple[EpochFacts, ...] = ()
    training_time: float | None = None
    training_time_line: Line | None = None
    success_claims: tuple[Line, ...] = ()
    signals: dict[str, tuple[Line, ...]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    truncated: tuple[str, ...] = ()  # "<file>: <problem>" for each cut-off compressed file
    replaced_lines: int = 0
    last_phase: str = ""
    last_line: Line | None = None
    still_growing: bool = False  # modified recently and no ending seen: the job may be running
    output_dir: str | None = None
    iterations_seen: int = 0
    eval_ap: float | None = None  # AP@[.5:.95] of an evaluation that followed no training
    missing: tuple[str, ...] = ()  # companion files looked for and not found
    # What the files read could show at all (seen / not seen / absent kept apart):
    stdout_read: bool = True  # a log with the trainer's own output was read (not only an .err)
    start_seen: Line | None = None  # a line from the job's start (banner, arguments, plan)
    would_tell: tuple[str, ...] = ()  # files that would show what these files do not
    empty_logs: tuple[str, ...] = ()  # logs that hold no byte at all
    output_records: int = 0  # epochs the run's log.txt records
    nonfinite_records: tuple[Line, ...] = ()  # log.txt epochs whose train_loss is NaN/inf
    loss_trend: LossTrend | None = None  # other trainers' total loss: lowest, highest jump
    ranks: RankFacts | None = None  # ranks, tasks, nodes, and which failed first

    def signal(self, kind: str) -> tuple[Line, ...]:
        return self.signals.get(kind, ())

    @property
    def decision(self) -> Decision | None:
        """The path actually taken: resume beats pretrained (DINO ignores the latter then)."""
        for mode in ("resume", "pretrained", "fresh"):
            chosen = [d for d in self.decisions if d.mode == mode]
            if chosen:
                # A line that states the source epoch (tbx-train) is the better evidence.
                return next((d for d in chosen if d.source_epoch is not None), chosen[0])
        return None

    @property
    def trained_epochs(self) -> tuple[EpochFacts, ...]:
        return tuple(e for e in self.epochs if e.epoch >= 0)

    @property
    def iterations_only(self) -> EpochFacts | None:
        """Progress of a trainer that counts iterations, not epochs (detectron2 / detrex)."""
        return next((e for e in self.epochs if e.epoch == ITERATIONS_ONLY), None)

    @property
    def training(self) -> str:
        """`seen` (a training line or a non-zero training time), `absent` (the job's own output
        from its start was read and holds none) or `unknown` (the files read could not show it).
        """
        shown = (
            self.epochs
            or self.signal("progress")
            or self.signal("nonfinite")
            or self.output_records
            # A non-zero training time, unless the loop's start is printed with no training line
            # after it (detectron2's time covers its hooks even when no iteration ran).
            or ((self.training_time or 0) > 0 and self.start_training is None)
        )
        if shown:
            return "seen"
        if self.signal("tqdm_bar"):
            return "unknown"  # a loop ran; its bar does not say it was training
        return (
            "absent" if self.stdout_read and self.start_seen and self.silence_proves else "unknown"
        )

    @property
    def silence_proves(self) -> bool:
        """No iteration line means no iteration only where one would have been printed: the
        loop's end is printed, or the trainer prints iteration 0 (DINO, tbx-train)."""
        loop_end = self.training_time_line is not None or (self.start_training and self.end)
        dino = self.signal("namespace") or self.signal("run_plan") or self.signal("command")
        return bool(loop_end or dino or self.eval_only)

    @property
    def unseen_why(self) -> str:
        """Why the files cannot show the training, and which file would (for `unknown`)."""
        if not self.stdout_read:
            why = "only SLURM's .err was read, and the trainer prints its progress to the .out"
        elif self.signal("tqdm_bar"):
            why = "a progress bar ran, but its lines do not say whether it was training"
        elif self.start_seen is None:
            why = "the log has no line from the job's start: it is a fragment or a tail"
        elif not self.silence_proves:
            why = (
                "no iteration line was printed, but this trainer prints one only every N "
                "iterations and the log stops before any loop end"
            )
        else:
            return ""
        return why + (f"; {' or '.join(self.would_tell)} would tell" if self.would_tell else "")

    @property
    def ended(self) -> bool:
        """Some line says how the job ended (normal end, SLURM, crash or signal)."""
        kinds = (
            "run_end",
            "time_limit",
            "cancelled",
            "preempted",
            "node_fail",
            "host_oom",
            "traceback",
            "sigusr1",
            "plan_refused",
            "task_failed",
            "killed",
            "script_failed",
        )
        return bool(self.end or self.training_time_line or any(self.signal(k) for k in kinds))
