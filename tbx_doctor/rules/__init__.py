"""Stage 3, rules: functions `(JobFacts, Profile) -> list[Finding]`, one module per family.

`RULES` is the explicit, ordered tuple the doctor runs; `run_rules` applies severity overrides
from the profile and ranks the findings (errors first, root causes before symptoms).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from tbx_doctor.facts.job import JobFacts
from tbx_doctor.findings import SEVERITY_RANK, Finding
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.rules import crash, endings, learning, lifecycle, metrics, progress

Rule = Callable[[JobFacts, Profile], list[Finding]]

RULES: tuple[Rule, ...] = (
    progress.check_zero_epochs,
    progress.check_immediate_exit,
    progress.check_false_success,
    lifecycle.check_path,
    lifecycle.check_expected_path,
    lifecycle.check_banner_contradiction,
    lifecycle.check_strategy_mismatch,
    crash.check_crashes,
    metrics.check_nonfinite,
    metrics.check_loss_explosion,
    metrics.check_first_epoch,
    learning.check_learning,
    endings.check_endings,
    progress.check_incomplete,
)

# Root causes first when severities tie (lower = earlier).
_ORDER = {
    "zero-epochs": 0,
    "crash-traceback": 2,  # after the cause it carries (NaN, OOM, ...)
    "cuda-oom": 1,
    "nan-loss": 1,
    "config-error": 1,
    "data-error": 1,
    "host-oom-killed": 1,
    "nccl-error": 1,
    "node-fail": 1,
    "unexpected-resume": 2,
    "unexpected-fresh": 2,
    "resume-strategy-mismatch": 2,
    "immediate-exit": 3,
    "false-success": 4,
    "time-limit": 3,
    "cancelled": 3,
    "preempted": 3,
    "incomplete-log": 4,
}


def run_rules(facts: JobFacts, profile: Profile, rules: tuple[Rule, ...] = RULES) -> list[Finding]:
    """All findings for the job, severity-overridden by the profile, ranked."""
    found: list[Finding] = []
    for rule in rules:
        found.extend(rule(facts, profile))
    found = [replace(f, severity=profile.severity.get(f.code, f.severity)) for f in found]
    return sorted(found, key=lambda f: (-SEVERITY_RANK[f.severity], _ORDER.get(f.code, 5)))
