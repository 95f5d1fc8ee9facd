"""The two real TBX11K runs: run A (39430799 -> 39487851 -> 39543743) collapsed, run B
(39627174 -> ... -> 39707249) learned. Numbers read by hand from outputs/*/log.txt: run A's AP
trend (median of 3) peaked at 2.75% (epoch 4; best epoch 3.76% at 7) and is below 0.35x from
epoch 15; its loss trend rose from 1.548 (epoch 4) to 1.803 at epoch 13."""

from __future__ import annotations

import json

import pytest
from learning_helpers import RUN_A, RUN_B
from typer.testing import CliRunner

from tbx_doctor.cli import app
from tbx_doctor.profile.bands import reference_trajectory, with_reference
from tbx_doctor.profile.expectations import Profile, load_profile
from tbx_doctor.rules.learning import earliest_call, learning_findings

pytestmark = pytest.mark.real_logs


def check(*args) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["check", *map(str, args), "--format", "json"])
    return result.exit_code, json.loads(result.stdout)


def learning_codes(report: dict) -> set[str]:
    learning = {"ap-collapsed", "not-learning", "loss-diverging", "resume-regression"}
    return {f["code"] for f in report["findings"] if f["code"] in learning | {"off-reference"}}


def test_run_a_last_job_is_called_collapsed_naming_the_epochs(real_logs):
    code, report = check(real_logs / "logs" / "train_tbx11k_39543743.out.gz")
    assert code == 1 and report["verdict"] == "failed"
    collapsed = next(f for f in report["findings"] if f["code"] == "ap-collapsed")
    assert collapsed["title"] == "AP collapsed from epoch 15: trend 0.12% against a best of 2.75%"
    text = collapsed["explanation"]
    assert "peaked at 2.75% at epoch 4 (best single epoch 3.76% at epoch 7)" in text
    assert "confirmed at epoch 16" in text and "stayed there to epoch 49" in text
    assert all(e["file"].endswith("tbx11k_run_39543743/log.txt") for e in collapsed["evidence"])
    diverging = next(f for f in report["findings"] if f["code"] == "loss-diverging")
    assert "lowest at 1.548 (epoch 4)" in diverging["explanation"]


@pytest.mark.parametrize("job", RUN_A)
def test_every_run_a_folder_is_called(real_logs, job):
    code, report = check(real_logs / "outputs" / f"tbx11k_run_{job}")
    assert code == 1 and "ap-collapsed" in learning_codes(report)


@pytest.mark.parametrize("job", RUN_B)
def test_run_b_gets_no_learning_finding(real_logs, job):
    folder = real_logs / "outputs" / f"tbx11k_run_{job}"
    _, report = check(folder)
    assert learning_codes(report) == set()
    # Nor against itself as reference, nor against the defaults' first-epoch expectations.
    _, report = check(folder, "--reference", real_logs / "outputs" / "tbx11k_run_39707249")
    assert learning_codes(report) == set()
    assert not {"loss-abnormal-first-epoch", "low-first-epoch-ap"} & {
        f["code"] for f in report["findings"]
    }


@pytest.mark.parametrize("job", RUN_B[1:])
def test_run_b_logs_get_no_learning_finding(real_logs, job):
    _, report = check(real_logs / "logs" / f"train_tbx11k_{job}.out.gz")
    assert learning_codes(report) == set()


def test_earliest_call_of_run_a_with_and_without_run_b(real_logs):
    run_a = reference_trajectory(real_logs / "outputs" / "tbx11k_run_39543743")
    epoch, found = earliest_call(run_a, Profile())
    assert (epoch, found.code) == (14, "loss-diverging")
    collapse = next(f for f in learning_findings(run_a, Profile(), "A") if f.code == "ap-collapsed")
    assert "confirmed at epoch 16" in collapse.explanation
    with_b = with_reference(Profile(), real_logs / "outputs" / "tbx11k_run_39707249")
    epoch, found = earliest_call(run_a, with_b)
    assert (epoch, found.code) == (1, "off-reference")
    assert "confirmed at epoch 1: 1.20% against 2.17%" in found.explanation


def test_profile_learned_from_run_b_bands_and_calls_run_a(real_logs, tmp_path):
    logs = [real_logs / "logs" / f"train_tbx11k_{j}.{'err' if j == RUN_B[0] else 'out.gz'}"
            for j in RUN_B]  # fmt: skip
    result = CliRunner().invoke(app, ["profile", "learn", *map(str, logs)])
    assert result.exit_code == 0, result.output
    (tmp_path / "b.toml").write_text(result.stdout)
    profile = load_profile(tmp_path / "b.toml")
    band = profile.bands.by_epoch
    assert min(band) == 0 and max(band) == 48
    # Epoch 0 of run B: loss 3.179, AP 5.32% -> band loss <= 1.2x, AP >= 0.5x.
    assert band[0].loss_high == pytest.approx(3.179 * 1.2, abs=1e-3)
    assert band[0].ap_low == pytest.approx(0.0532 * 0.5, abs=1e-3)
    code, report = check(real_logs / "logs" / "train_tbx11k_39543743.out.gz", "--reference",
                         tmp_path / "b.toml")  # fmt: skip
    assert code == 1
    off = next(f for f in report["findings"] if f["code"] == "off-reference")
    assert off["title"] == "Off the reference from epoch 0 (AP, loss)"
    assert "worst at epoch" in off["explanation"] and "x the edge" in off["explanation"]
    _, report = check(real_logs / "logs" / "train_tbx11k_39707249.out.gz", "--profile",
                      tmp_path / "b.toml")  # fmt: skip
    assert learning_codes(report) == set()


def test_history_marks_the_collapse_and_compares_the_chains(real_logs):
    logs = real_logs / "logs"
    args = ["history", *(str(p) for j in RUN_A for p in logs.glob(f"*{j}*"))]
    args += [x for j in RUN_B for p in logs.glob(f"*{j}*") for x in ("--compare", str(p))]
    text = CliRunner().invoke(app, args).stdout
    assert "^ ap-collapsed: visible at epoch 15, called at epoch 16" in text
    assert "Compare A: 39430799 -> 39487851 -> 39543743  with  B: 39627174 -> " in text
    assert "     15    2.276    1.582    0.12%   10.81%" in text
    data = json.loads(CliRunner().invoke(app, [*args, "--format", "json"]).stdout)
    curve = data["curves"][0]
    assert curve["jobs"] == list(RUN_A)
    assert {"code": "ap-collapsed", "visible": 15, "confirmed": 16} in curve["marks"]
    assert [e["epoch"] for e in curve["epochs"]] == [*range(24), *range(25, 50)]
    assert data["compared"][0]["marks"] == [] and data["compared"][0]["findings"] == []


def test_history_png_with_reference(real_logs, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "h.png"
    result = CliRunner().invoke(app, ["history", str(real_logs / "logs"), "--plot", str(out),
                                      "--reference", str(real_logs / "outputs" /
                                                          "tbx11k_run_39707249")])  # fmt: skip
    assert result.exit_code == 1 and out.stat().st_size > 50_000
