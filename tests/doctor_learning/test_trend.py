"""Trajectory verdicts on synthetic series: collapse, plateau, slow but healthy start, noisy
healthy runs, a resume that regresses; the trend ignores single epochs."""

from __future__ import annotations

import pytest
from learning_helpers import healthy_ap, healthy_loss, noisy, series

from tbx_doctor.facts import trend as T
from tbx_doctor.facts.trajectory import Sample, Trajectory
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.rules.learning import earliest_call, learning_findings

DEFAULTS = Profile().learning


def trajectory(aps, losses, resumes=()) -> Trajectory:
    pairs = enumerate(zip(aps, losses, strict=True))
    samples = tuple(Sample(e, loss, ap, None) for e, (ap, loss) in pairs)
    return Trajectory(samples, tuple(resumes))


def codes(aps, losses, resumes=()) -> set[str]:
    found = learning_findings(trajectory(aps, losses, resumes), Profile(), "job 1")
    return {f.code for f in found}


def test_trend_is_a_trailing_median_that_ignores_one_outlier():
    assert T.trend(series([1.0, 5.0, 1.0, 1.0]), 3) == [(0, 1.0), (1, 3.0), (2, 1.0), (3, 1.0)]


def test_collapse_names_best_visible_and_confirmed_epochs():
    aps = [0.02, 0.04, 0.06, 0.08, 0.10, 0.10, 0.10, 0.02, 0.01, 0.01, 0.01]
    event = T.collapse(series(aps), DEFAULTS)
    # Trend (median of 3): 0.08 at epoch 4, 0.10 from epoch 5; below 0.035 from epoch 8.
    assert (event.reference_epoch, event.visible, event.confirmed, event.last) == (5, 8, 9, 10)
    assert event.reference_value == pytest.approx(0.10)
    found = learning_findings(trajectory(aps, healthy_loss(11)), Profile(), "job 1")
    collapsed = next(f for f in found if f.code == "ap-collapsed")
    assert "from epoch 8" in collapsed.title and "confirmed at epoch 9" in collapsed.explanation


def test_a_recovered_dip_is_no_collapse():
    aps = [0.05, 0.08, 0.10, 0.10, 0.02, 0.02, 0.02, 0.09, 0.10, 0.11, 0.11]
    assert T.collapse(series(aps), DEFAULTS) is None


def test_plateau_near_zero_is_not_learning_but_not_before_min_epochs():
    aps = [0.002] * 12
    assert codes(aps, healthy_loss(12)) == {"not-learning"}
    assert codes(aps[:5], healthy_loss(5)) == set()  # epochs 0-4: too early to say


def test_flat_loss_from_epoch_0_is_not_learning_without_any_ap():
    traj = Trajectory(tuple(Sample(e, 2.0 + 0.01 * (e % 2), None, None) for e in range(8)))
    found = learning_findings(traj, Profile(), "job 1")
    assert [f.code for f in found] == ["not-learning"]
    assert "never fell 5% below epoch 0's 2.000" in found[0].explanation


def test_slow_but_healthy_start_gets_no_finding():
    aps = [0.0, 0.0, 0.002, 0.006, 0.015, 0.03, 0.05, 0.07, 0.09, 0.10, 0.11, 0.12]
    assert codes(aps, healthy_loss(12)) == set()


@pytest.mark.parametrize("seed", range(25))
def test_noisy_healthy_run_with_an_outlier_epoch_gets_no_finding(seed):
    aps = noisy(healthy_ap(40), seed, spread=0.5, outlier=5 + seed % 30)
    losses = noisy(healthy_loss(40), seed + 100, spread=0.06)
    assert codes(aps, losses) == set()


def test_diverging_loss_while_ap_falls():
    aps = [0.02, 0.03, 0.04, 0.04, 0.04, 0.03, 0.01, 0.005, 0.004, 0.004]
    losses = [2.0, 1.8, 1.6, 1.5, 1.5, 1.6, 1.9, 2.1, 2.2, 2.2]
    assert "loss-diverging" in codes(aps, losses)
    # The same loss with AP still rising is not reported.
    assert "loss-diverging" not in codes(healthy_ap(10), losses)


def test_resume_that_regresses_is_reported_with_both_medians():
    aps = [0.06, 0.08, 0.10, 0.10, 0.10, 0.03, 0.03, 0.03]
    found = learning_findings(trajectory(aps, healthy_loss(8), [5]), Profile(), "job 1")
    regression = next(f for f in found if f.code == "resume-regression")
    assert "epochs 2-4 (before the resume): 10.00%" in regression.explanation
    assert "epochs 5-7 (after it): 3.00%" in regression.explanation
    # A resume that continues at the same level is fine.
    assert "resume-regression" not in codes(healthy_ap(8), healthy_loss(8), [5])


def test_a_resume_needs_two_epochs_after_it():
    aps = [0.06, 0.08, 0.10, 0.10, 0.10, 0.03]
    assert "resume-regression" not in codes(aps, healthy_loss(6), [5])


def test_earliest_call_replays_epoch_by_epoch():
    aps = [0.02, 0.04, 0.06, 0.08, 0.10, 0.10, 0.10, 0.02, 0.01, 0.01, 0.01, 0.01]
    epoch, found = earliest_call(trajectory(aps, healthy_loss(12)), Profile())
    assert (epoch, found.code) == (9, "ap-collapsed")
    assert earliest_call(trajectory(healthy_ap(12), healthy_loss(12)), Profile()) is None


@pytest.mark.parametrize("values", [[3.0], [2.0, 1.0], [5.0, 1.0, 3.0], [4.0, 1.0, 2.0, 3.0]])
def test_median_matches_statistics(values):
    import statistics

    assert T.median(values) == statistics.median(values)
