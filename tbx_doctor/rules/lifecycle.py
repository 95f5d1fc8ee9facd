"""Which path the run took (fresh / pretrained / resume), whether that was the expected one,
and whether a resume kept the training strategy."""

from __future__ import annotations

from tbx_doctor.facts.job import JobFacts, Strategy
from tbx_doctor.findings import Finding, finding
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.rules.describe import epoch_range, job_name, where


def _resume_text(facts: JobFacts) -> str:
    source = facts.source
    trained = facts.trained_epochs
    text = f"{job_name(facts)} resumed from {facts.decision.source} ({where(facts.decision.line)})."
    if source is not None and source.epoch is not None:
        plan = f" of {source.epochs_planned}" if source.epochs_planned else ""
        text += f" That checkpoint had finished epoch {source.epoch}{plan} ({source.origin})."
    elif source is not None:
        text += " The checkpoint's epoch is not stated by any file read."
    if not trained:
        text += " No training iteration of this job appears in its log."
    else:
        many = trained[0].epoch != trained[-1].epoch
        text += f" This job trained epoch{'s' if many else ''} {epoch_range(trained)}."
    return text


def check_path(facts: JobFacts, profile: Profile) -> list[Finding]:
    """Report the path taken: resume / pretrained (info), scratch without pretrained (warning)."""
    decision = facts.decision
    if decision is None or facts.eval_only:
        return []
    if decision.mode == "resume":
        evidence = [decision.line, *(facts.source.evidence if facts.source else ())]
        return [
            finding(
                "resumed-from-checkpoint",
                "Resumed from a checkpoint",
                evidence,
                _resume_text(facts),
                "Nothing to fix if resuming was intended.",
            )
        ]
    if decision.mode == "pretrained":
        return [
            finding(
                "used-pretrained",
                "Started from pretrained weights",
                [decision.line],
                f"{where(decision.line)}: weights from {decision.source}.",
                "Nothing to fix.",
            )
        ]
    severity = "error" if profile.expect == "pretrained" else None
    return [
        finding(
            "fresh-no-pretrained",
            "Trained from random initialisation",
            [decision.line],
            f"{where(decision.line)}: no pretrained weights and no checkpoint; DETR-family models "
            "converge far slower from scratch.",
            "Pass pretrained weights (e.g. DINO-4scale checkpoint0011_4scale.pth) unless intended.",
            severity,
        )
    ]


def check_expected_path(facts: JobFacts, profile: Profile) -> list[Finding]:
    """--expect / profile `expect` versus the path the log shows."""
    decision = facts.decision
    if decision is None or profile.expect == "any" or facts.eval_only:
        return []
    if decision.mode == "resume" and profile.expect in ("fresh", "pretrained"):
        return [
            finding(
                "unexpected-resume",
                f"Resumed although a {profile.expect} start was expected",
                [decision.line],
                f"Expected path `{profile.expect}` ({profile.origin} or --expect); "
                f"{where(decision.line)} shows a resume from {decision.source}.",
                "Remove the automatic resume (--resume / PREV_CHECKPOINT_DIR) or use a new output "
                "directory; pass the pretrained weights explicitly.",
            )
        ]
    if decision.mode in ("fresh", "pretrained") and profile.expect == "resume":
        return [
            finding(
                "unexpected-fresh",
                "Started without resuming although a resume was expected",
                [decision.line],
                f"Expected path `resume`; {where(decision.line)} shows a "
                f"{decision.mode} start, so earlier training progress was not used.",
                "Point --resume at the previous run's checkpoint.pth (check that it exists).",
            )
        ]
    return []


def check_banner_contradiction(facts: JobFacts, profile: Profile) -> list[Finding]:
    """A banner claims a fresh start while the run resumed."""
    decision = facts.decision
    if not facts.fresh_claims or decision is None or decision.mode != "resume":
        return []
    claim = facts.fresh_claims[0]
    return [
        finding(
            "banner-contradiction",
            "The banner says FRESH training, the run resumed",
            [claim, decision.line],
            f"{where(claim)} says `{claim.text.strip()}`, but "
            f"{where(decision.line)} resumes from {decision.source}: the banner is stale.",
            "Fix the wrapper script so its banner prints the decision it actually made.",
        )
    ]


def check_strategy_mismatch(facts: JobFacts, profile: Profile) -> list[Finding]:
    """Resume across batch size / accumulation / world size (effective batch changes)."""
    source, mine = facts.source, facts.strategy
    if source is None or source.strategy is None or mine is None or facts.eval_only:
        return check_iterations_changed(facts, profile)
    theirs = source.strategy
    keys = ("batch_size", "grad_accum", "world_size")
    differ = [
        k
        for k in keys
        if None not in (getattr(theirs, k), getattr(mine, k))
        and getattr(theirs, k) != getattr(mine, k)
    ]
    if not differ:
        return check_iterations_changed(facts, profile)

    def fmt(s: Strategy) -> str:
        per_step = f"batch {s.batch_size} x accum {s.grad_accum} x {s.world_size} GPU"
        return f"{per_step} = {s.effective_batch}"

    return [
        finding(
            "resume-strategy-mismatch",
            "The resume changed the training strategy",
            [*mine.evidence, *theirs.evidence],
            f"Source run ({source.origin}): {fmt(theirs)}; this job: {fmt(mine)} "
            f"(differs in {', '.join(differ)}). The optimizer/LR-schedule state was built for the "
            "other effective batch.",
            "Resume with the source's strategy, or start fresh for the new one (tbx-train "
            "refuses this).",
        )
    ]


def check_iterations_changed(facts: JobFacts, profile: Profile) -> list[Finding]:
    """Iterations per epoch differ from the source run's: with the same data that is another
    batch size x GPUs (seen even when neither log prints its strategy)."""
    source = facts.source
    mine = next((e for e in facts.trained_epochs if e.iterations is not None), None)
    if source is None or source.iterations_per_epoch is None or mine is None or facts.eval_only:
        return []
    if mine.iterations == source.iterations_per_epoch:
        return []
    return [
        finding(
            "resume-strategy-mismatch",
            "The resume changed the iterations per epoch",
            [mine.first, source.iterations_line],
            f"Source run ({source.origin}): {source.iterations_per_epoch} iterations per epoch "
            f"({where(source.iterations_line)}); this job: {mine.iterations} "
            f"({where(mine.first)}). Over the same data that means another batch size x GPUs "
            "(or other data), so the optimizer/LR-schedule state was built for another "
            "effective batch.",
            "Resume with the source's batch size, GPUs and data, or start fresh for the new "
            "ones (tbx-train refuses this).",
        )
    ]
