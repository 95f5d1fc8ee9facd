"""Plots and sparklines of a chain: the PNG for the real chain, binned loss, terminal bars."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from history_helpers import REPO, iteration, real_history, real_logs_dir
from typer.testing import CliRunner

from tbx_doctor.cli import app
from tbx_doctor.history.loss_bins import loss_bins
from tbx_doctor.report.sparkline import sparkline


@pytest.mark.real_logs
def test_png_for_the_real_chain(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib (the [plot] extra) is not installed")
    from tbx_doctor.history.plot import plot_history

    out = tmp_path / "chain.png"
    plot_history(real_history(), out)
    assert out.stat().st_size > 0
    from PIL import Image  # comes with matplotlib

    with Image.open(out) as image:
        width, height = image.size
        assert image.format == "PNG" and width > 1000 and height > 1000


@pytest.mark.real_logs
def test_real_loss_bins_follow_the_epoch_mean():
    log = real_logs_dir() / "logs" / "train_tbx11k_39543743.out.gz"
    bins = loss_bins(log, bins_per_epoch=10)
    assert {b.epoch for b in bins} == {49} and len(bins) == 10
    # Weighted by their widths the bins give back the epoch's mean (running mean at its end).
    mean = sum(b.loss * (b.end - b.start) for b in bins) / (bins[-1].end - bins[0].start)
    assert mean == pytest.approx(2.1084, abs=2e-3)


def test_bins_are_exact_means_of_the_iterations(tmp_path):
    # Losses 1, 3, 1, 3, ...: running means printed every 2 iterations; bins of 4 iterations.
    losses = [1.0 if i % 2 == 0 else 3.0 for i in range(8)]
    lines = [iteration(0, i, 8, sum(losses[: i + 1]) / (i + 1), losses[i]) for i in range(0, 8)]
    log = tmp_path / "t.out"
    log.write_text("\n".join(lines) + "\n")
    bins = loss_bins(log, bins_per_epoch=2)
    assert [(b.start, b.end) for b in bins] == [(-1, 3), (3, 7)]
    assert [round(b.loss, 4) for b in bins] == [2.0, 2.0]


def test_sparkline_scale_segments_and_holes():
    assert sparkline([[1.0, 2.0], [None, 3.0]]) == "▁▅│ █"
    assert sparkline([[5.0, 5.0]]) == "▁▁"
    assert sparkline([[None], []]) == " │"


def test_plot_without_matplotlib_is_exit_2(tmp_path, monkeypatch):
    log = tmp_path / "t_1.out"
    log.write_text("Training from scratch\nStart training\n" + iteration(0, 0, 8, 1.0) + "\n")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = CliRunner().invoke(app, ["history", str(log), "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 2 and "needs matplotlib" in result.output
    assert not Path(tmp_path / "p.png").exists()


def test_png_for_the_incident_chain_marks_the_zero_epoch_job(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib (the [plot] extra) is not installed")
    out = tmp_path / "incident.png"
    result = CliRunner().invoke(
        app, ["history", str(REPO / "fixtures" / "incident"), "--plot", str(out)]
    )
    assert result.exit_code == 1 and f"plot written to {out}" in result.stdout
    from PIL import Image  # comes with matplotlib

    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 1000
