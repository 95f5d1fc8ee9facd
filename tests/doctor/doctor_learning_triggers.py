"""Logs that trigger (and that do not trigger) the learning-quality codes (rules/learning.py),
for test_doctor_rules' one-trigger-per-code table. The trajectories themselves are tested in
tests/doctor_learning."""

from __future__ import annotations

from pathlib import Path

from doctor_logtext import CKPT, banner, ending, epoch_lines, namespace, write_log


def run_lines(aps: list[float], losses: list[float], job: int = 1001, first: int = 0) -> list[str]:
    """A pretrained run (or, with first > 0, a resume of job 900) with these epoch numbers."""
    lines = [*banner(job)]
    if first:
        lines.append(f"Resuming from previous job checkpoint: {CKPT.format(job=900)}")
    else:
        lines.append("Using pretrained weights: /w/checkpoint0011_4scale.pth")
    lines += [namespace(first + len(aps), job=job), "Start training"]
    for n, (ap, loss) in enumerate(zip(aps, losses, strict=True)):
        lines += epoch_lines(first + n, n=10, loss=loss, ap=ap)
    return lines + ending()


def _log(tmp: Path, aps: list[float], losses: list[float]) -> list:
    return [write_log(tmp, "train_1001.out", run_lines(aps, losses))]


FALLING = [2.4 - 0.08 * e for e in range(10)]


def collapsed(tmp: Path) -> list:
    aps = [0.02, 0.04, 0.06, 0.08, 0.10, 0.10, 0.01, 0.005, 0.005, 0.004]
    return _log(tmp, aps, FALLING)


def not_learning(tmp: Path) -> list:
    return _log(tmp, [0.001] * 10, FALLING)


def diverging(tmp: Path) -> list:
    losses = [2.0, 1.8, 1.6, 1.5, 1.5, 1.6, 1.9, 2.1, 2.2, 2.2]
    return _log(tmp, [0.02, 0.03, 0.04, 0.04, 0.04, 0.03, 0.01, 0.005, 0.004, 0.004], losses)


def regressed(tmp: Path) -> list:
    """Job 900 reached AP 10% in epochs 0-3; job 1001 resumed it and scores 3%."""
    write_log(tmp, "train_900.out", run_lines([0.08, 0.1, 0.1, 0.1], FALLING[:4], job=900))
    lines = run_lines([0.03, 0.03, 0.03], FALLING[4:7], first=4)
    return [write_log(tmp, "train_1001.out", lines)]


def off_reference(tmp: Path) -> list:
    """A steady run whose AP is a fifth of the reference band's."""
    profile = tmp / "reference.toml"
    profile.write_text(
        "[bands]\nepochs = [0, 1, 2, 3]\nloss_low = [1.0, 1.0, 1.0, 1.0]\n"
        "loss_high = [3.0, 3.0, 3.0, 3.0]\nap_low = [0.05, 0.05, 0.05, 0.05]\n"
        "ap_high = [0.2, 0.2, 0.2, 0.2]\n"
    )
    return [*_log(tmp, [0.01] * 4, FALLING[:4]), "--profile", str(profile)]


LEARNING_TRIGGERS = {
    "ap-collapsed": collapsed,
    "not-learning": not_learning,
    "loss-diverging": diverging,
    "resume-regression": regressed,
    "off-reference": off_reference,
}
