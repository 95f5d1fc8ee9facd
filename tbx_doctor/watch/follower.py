"""Follow a running job's log (and its `.err`) and report problems as they appear.

Each poll re-reads the files when they changed (size, inode) and re-runs the doctor on them
(`facts.build.build_facts`, `diagnosis.diagnose_facts`: the same facts and rules as `check`), plus
the clock-based early warnings of `early_warnings`. Every finding is emitted once (by code);
checklist items are emitted when they leave `pending`. The watch stops when the job's end is
seen (the wrapper's End Time, SLURM's cancel line, or the trainer's ending or a crash
followed by `settle` quiet seconds) or after `timeout`; its exit code is `check`'s
for what was seen. A log that does not exist yet is waited for; a log that shrinks or is
replaced (rotation) is read again from its start, without repeating what was already said.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from tbx_doctor.diagnosis import Report, diagnose_facts
from tbx_doctor.facts.build import build_facts, parse_clock
from tbx_doctor.facts.job import JobFacts
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.reading.job_files import collect_jobs
from tbx_doctor.rules.describe import where
from tbx_doctor.watch.early_warnings import (
    Clock,
    EarlyWarning,
    check_loss_stuck_zero,
    check_stalled,
    check_time_limit_near,
    read_end_time,
)


@dataclass(frozen=True)
class WatchOptions:
    """Polling and early-warning thresholds (seconds unless the name says minutes)."""

    interval: float = 10.0
    timeout: float | None = None
    stall_minutes: float = 10.0
    time_limit: float | None = None  # the job's limit, counted from its Start Time line
    margin_minutes: float = 30.0
    zero_loss_iterations: int = 500
    strict: bool = False
    settle: float = 30.0  # after the trainer's last line, wait this long for wrapper/SLURM lines


@dataclass(frozen=True)
class Event:
    """Something the watcher reports; `at` is seconds since watching began."""

    at: float
    kind: str  # waiting|appeared|truncated|rotated|finding|checklist|end|timeout|stopped
    text: str
    code: str | None = None
    severity: str | None = None
    status: str | None = None
    evidence: tuple = ()


def _companion_err(log: Path) -> Path:
    name = log.name.removesuffix(".gz")
    stem = name.removesuffix(".out").removesuffix(".err")
    return log.with_name(stem + ".err")


class Watcher:
    """Poll `log` until the job ends or the timeout; `emit` receives each Event."""

    def __init__(
        self,
        log: Path,
        options: WatchOptions,
        profile: Profile,
        emit: Callable[[Event], None],
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.log, self.options, self.profile = log, options, profile
        self.emit_event, self.clock, self.sleep = emit, clock, sleep
        self.started = clock()
        self.signature: tuple | None = None
        self.facts: JobFacts | None = None
        self.report: Report | None = None
        self.said: dict[str, str] = {}  # finding code -> severity, checklist item -> status
        self.first_seen: float | None = None
        self.start_training_seen: float | None = None
        self.deadline: tuple[float, str] | None = None
        self.waiting_said = False
        self.last_change = self.started

    def emit(self, kind: str, text: str, **fields) -> None:
        self.emit_event(Event(round(self.clock() - self.started, 3), kind, text, **fields))

    def run(self) -> int:
        """Watch until the end or the timeout; return the exit code (as `check`)."""
        while True:
            if self.poll():
                self._finish("end")
                break
            timeout = self.options.timeout
            if timeout is not None and self.clock() - self.started >= timeout:
                self._finish("timeout")
                break
            self.sleep(self.options.interval)
        return self.exit_code()

    def poll(self) -> bool:
        """One look at the files; True when the job's end has been seen."""
        if not self.log.exists():
            if not self.waiting_said:
                self.emit("waiting", f"waiting for {self.log} to appear")
                self.waiting_said = True
            return False
        if self.first_seen is None:
            self.first_seen = self.clock()
            if self.waiting_said:
                self.emit("appeared", f"{self.log} appeared")
        signature = self._signature()
        if signature != self.signature:
            self._note_reset(signature)
            self.signature, self.last_change = signature, self.clock()
            self._reread()
        self._evaluate()
        return self._over()

    def _over(self) -> bool:
        """The job's end is seen: the wrapper's End Time or SLURM's line, or the trainer's
        ending followed by `settle` seconds without a new line (nothing more is coming)."""
        facts = self.facts
        if facts is None or not facts.ended:
            return False
        if facts.end is not None or facts.slurm_end is not None:
            return True
        return self.clock() - self.last_change >= self.options.settle

    def _signature(self) -> tuple:
        stat = self.log.stat()
        err = _companion_err(self.log)
        err_size = err.stat().st_size if err.is_file() and err != self.log else -1
        return (stat.st_ino, stat.st_size, err_size)

    def _note_reset(self, signature: tuple) -> None:
        if self.signature is None:
            return
        if signature[0] != self.signature[0]:
            self.emit("rotated", f"{self.log} was replaced: reading the new file from its start")
        elif signature[1] < self.signature[1]:
            self.emit("truncated", f"{self.log} shrank: reading it again from its start")

    def _reread(self) -> None:
        now = self.clock()
        job = collect_jobs([self.log])[0]
        facts = build_facts(job, [self.log], now)
        # While watching, a log without an ending is a running job, however old its mtime.
        self.facts = replace(facts, still_growing=not facts.ended)
        self.report = diagnose_facts(self.facts, self.profile)
        if self.facts.start_training is not None and self.start_training_seen is None:
            self.start_training_seen = now
        if self.deadline is None:
            self.deadline = self._deadline()

    def _deadline(self) -> tuple[float, str] | None:
        found = read_end_time(self.log)
        if found is not None:
            return found[0], f"SLURM_JOB_END_TIME at {where(found[1])}"
        if self.options.time_limit is None:
            return None
        start = parse_clock(self.facts.start) if self.facts else None
        if start is not None:
            origin = f"--time-limit from the Start Time at {where(self.facts.start)}"
            return start.timestamp() + self.options.time_limit, origin
        return self.first_seen + self.options.time_limit, "--time-limit from when the log appeared"

    def early_warnings(self) -> list[EarlyWarning]:
        o, facts = self.options, self.facts
        deadline, origin = self.deadline or (None, "")
        clock = Clock(self.clock(), self.start_training_seen, deadline, origin)
        return [
            *check_stalled(facts, clock, o.stall_minutes),
            *check_loss_stuck_zero(facts, o.zero_loss_iterations),
            *check_time_limit_near(facts, clock, o.margin_minutes),
        ]

    def _evaluate(self) -> None:
        if self.facts is None or self.report is None:
            return
        for f in [*self.report.findings, *self.early_warnings()]:
            key = _said_key(f)
            if key not in self.said:
                self.said[key] = f.severity
                text = f"{f.severity.upper()} {f.code}: {f.title}. {f.explanation}"
                self.emit("finding", text, code=f.code, severity=f.severity, evidence=f.evidence)
        for item in self.report.checklist:
            key = "checklist:" + item.item
            if item.status not in ("pending", self.said.get(key, "pending")):
                self.said[key] = item.status
                text = f"{item.status}: {item.item} ({item.evidence})"
                self.emit("checklist", text, status=item.status)

    def exit_code(self) -> int:
        levels = {v for k, v in self.said.items() if not k.startswith("checklist:")}
        return 1 if "error" in levels or (self.options.strict and "warning" in levels) else 0

    def _finish(self, kind: str) -> None:
        verdict = self.report.verdict if self.report else "no log"
        if kind == "end":
            self.emit("end", f"job ended: verdict {verdict}, exit code {self.exit_code()}")
        else:
            self.emit("timeout", f"stopped after {self.options.timeout:g} s: verdict {verdict}")

    def stop(self, why: str) -> int:
        """End the watch from outside (SIGTERM, Ctrl-C): the final event, then the exit code."""
        verdict = self.report.verdict if self.report else "no log"
        self.emit("stopped", f"stopped by {why}: verdict {verdict}, exit code {self.exit_code()}")
        return self.exit_code()


def _said_key(f) -> str:
    """Each finding is said once; time-limit-near once per unsaved epoch (its first line)."""
    if f.code == "time-limit-near" and f.evidence:
        return f"{f.code}@{where(f.evidence[0])}"
    return f.code
