"""Draw a history: per chain, the loss (bins of iterations and epoch means) and AP/AP50 per
epoch along the epochs, one colour band per job, job boundaries and endings marked.

matplotlib is an optional extra, imported inside `plot_history` only (never at start-up);
without it `PlotUnavailable` (a DoctorError: exit 2) says how to install it. The x axis is
the epoch (epoch e spans [e, e+1)); AP after epoch e is drawn at e + 1, when it was measured.
"""

from __future__ import annotations

from pathlib import Path

from tbx_doctor.errors import DoctorError
from tbx_doctor.history.chain import Chain, History, row_key
from tbx_doctor.history.loss_bins import LossBin, loss_bins
from tbx_doctor.history.rows import JobRow

JOB_COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3")
ENDING_MARK = {"finished": "finished", "time limit": "time limit", "cancelled": "cancelled"}


class PlotUnavailable(DoctorError):
    """matplotlib is not installed."""


def _out_log(row: JobRow) -> Path | None:
    for name in row.files:
        if Path(name).name.removesuffix(".gz").endswith(".out") and Path(name).is_file():
            return Path(name)
    return None


def _span(row: JobRow) -> tuple[float, float] | None:
    """x range a job covers: first epoch to the end of its last (or where it was cut)."""
    if row.first_epoch is None or row.last_epoch is None:
        # A job that trained nothing is a line where its first epoch would have begun.
        start = None if row.source_epoch is None else row.source_epoch + 1.0
        return None if start is None or row.kind != "train" else (start, start)
    end = row.last_epoch + 1.0
    last = row.epochs[-1] if row.epochs else None
    if last is not None and not last.finished and row.iterations_per_epoch and row.ending_detail:
        cut = row.ending_detail.rsplit("iteration ", 1)[-1].split("/")[0]
        end = row.last_epoch + (int(cut) + 1) / row.iterations_per_epoch if cut.isdigit() else end
    return float(row.first_epoch), end


def _label_levels(spans: list[tuple[float, float] | None], width: float) -> list[int]:
    """0 or 1 per job: a label too close to the previous one goes one row higher."""
    levels, previous = [], None
    for span in spans:
        centre = None if span is None else (span[0] + span[1]) / 2
        close = centre is not None and previous is not None and centre - previous[0] < 0.14 * width
        levels.append(1 - previous[1] if close else 0)
        if centre is not None:
            previous = (centre, levels[-1])
    return levels


def _bands(axes, rows: list[JobRow], label_axis) -> int:
    """Colour band, start line and a label (job, ending) per job; returns label rows used."""
    spans = [_span(r) for r in rows]
    known = [s for s in spans if s is not None]
    width = (max(s[1] for s in known) - min(s[0] for s in known)) if known else 1.0
    levels = _label_levels(spans, width or 1.0)
    for n, (row, span) in enumerate(zip(rows, spans, strict=True)):
        if span is None:
            continue
        colour = JOB_COLOURS[n % len(JOB_COLOURS)]
        for ax in axes:
            ax.axvspan(*span, color=colour, alpha=0.10, lw=0)
            ax.axvline(span[0], color="0.45", ls="--", lw=0.8)
            if span[0] == span[1]:  # trained nothing
                ax.axvline(span[0], color=colour, lw=2.5)
        ending = row.ending + (f", {row.ending_detail}" if row.ending_detail else "")
        ending = ending.replace("mid-epoch ", "in epoch ").replace(" at iteration ", " it ")
        label_axis.text(
            (span[0] + span[1]) / 2, 1.02 + 0.13 * levels[n], f"job {row.job_id}\n{ending}",
            transform=label_axis.get_xaxis_transform(), ha="center", va="bottom",
            fontsize=8, color=colour, fontweight="bold",
        )  # fmt: skip
    return 1 + max(levels, default=0)


def _broken(series: list[LossBin]) -> tuple[list[float], list[float]]:
    """x, y of the bins with a NaN wherever two bins do not touch (no line across a hole)."""
    xs: list[float] = []
    ys: list[float] = []
    for previous, b in zip([None, *series], series, strict=False):
        touching = previous is None or (previous.epoch, previous.end) == (b.epoch, b.start)
        # The next epoch's first bin touches the last bin of a finished epoch.
        touching = touching or (b.epoch == previous.epoch + 1 and b.start == -1)
        if not touching:
            xs.append(float("nan"))
            ys.append(float("nan"))
        xs.append(b.x)
        ys.append(b.loss)
    return xs, ys


def _loss_panel(ax, rows: list[JobRow], bins: dict[str, list[LossBin]]) -> None:
    for n, row in enumerate(rows):
        colour = JOB_COLOURS[n % len(JOB_COLOURS)]
        xs, ys = _broken(bins.get(row_key(row), []))
        if xs:
            ax.plot(xs, ys, color=colour, lw=0.8, marker=".", ms=2, alpha=0.6,
                    label="mean loss per tenth of an epoch")  # fmt: skip
        done = [p for p in row.epochs if p.loss is not None]
        ax.plot([p.epoch + 0.5 for p in done], [p.loss for p in done], "o-", color="black",
                ms=3.5, lw=1.2, label="epoch mean loss")  # fmt: skip
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=False))
    ax.legend(unique.values(), unique.keys(), loc="best", fontsize=8)


def _ap_panel(ax, rows: list[JobRow]) -> None:
    styles = (("ap", "AP@[.5:.95]", "-", "#1f4e79"), ("ap50", "AP50", "--", "#b35900"))
    styles += (("ema_ap", "EMA AP@[.5:.95]", ":", "#2e7d32"),)
    for field, label, ls, colour in styles:
        xs, ys = [], []
        for row in rows:
            for p in row.epochs:
                if getattr(p, field) is not None:
                    xs.append(p.epoch + 1)
                    ys.append(getattr(p, field) * 100)
        if xs:
            ax.plot(xs, ys, ls, marker="o", ms=3, color=colour, lw=1.3, label=label)
    ax.set_ylabel("validation AP (%)")
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)


def _title(chain: Chain) -> str:
    reached = "?" if chain.epochs_reached is None else chain.epochs_reached
    planned = "?" if chain.epochs_planned is None else chain.epochs_planned
    return (
        f"Chain {' → '.join(chain.jobs)}:  {reached} of {planned} epochs,  "
        f"{chain.gpu_hours:.1f} GPU h,  {chain.hours_lost:.2f} h lost"
    )


def _missing_epochs(axes, chain: Chain) -> None:
    """Hatch the epochs between two linked jobs that no file shows trained."""
    for link in chain.links:
        done, first = link.source_last_epoch, link.first_epoch
        if done is None or first is None or first <= done + 1:
            continue
        for ax in axes:
            ax.axvspan(done + 1, first, facecolor="none", hatch="///", edgecolor="0.6", lw=0)
        centre = (done + 1 + first) / 2
        axes[0].text(centre, 0.5, "no record", rotation=90, ha="center", va="center",
                     fontsize=7, color="0.4", transform=axes[0].get_xaxis_transform())  # fmt: skip


def _draw_chain(sub, chain: Chain, members: list[JobRow], bins_per_epoch: int, history) -> None:
    from tbx_doctor.history.curves import draw_learning

    loss_ax, ap_ax = sub.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    logs = {row_key(r): _out_log(r) for r in members}
    bins = {job: loss_bins(log, bins_per_epoch) for job, log in logs.items() if log is not None}
    _loss_panel(loss_ax, members, bins)
    _ap_panel(ap_ax, members)
    rows_used = _bands((loss_ax, ap_ax), members, loss_ax)
    _missing_epochs((loss_ax, ap_ax), chain)
    draw_learning(loss_ax, ap_ax, chain, history)
    loss_ax.set_title(_title(chain), pad=8 + 30 * rows_used, fontsize=11, fontweight="bold")


def plot_history(history: History, path: Path, bins_per_epoch: int = 10) -> None:
    """Write a PNG with two panels (loss, AP) per chain to `path`."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never open a window (jobs run headless)
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable("--plot needs matplotlib: pip install 'tbx[plot]'") from exc
    chains = history.chains or []
    if not chains:
        raise DoctorError("nothing to plot: no training job among the given logs")
    rows = {row_key(r): r for r in history.rows}
    fig = plt.figure(figsize=(13, 8 * len(chains)), layout="constrained")
    for chain, sub in zip(chains, fig.subfigures(len(chains), 1, squeeze=False)[:, 0], strict=True):
        _draw_chain(sub, chain, [rows[j] for j in chain.jobs], bins_per_epoch, history)
    try:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    except OSError as exc:
        raise DoctorError(f"{path}: cannot write the plot ({exc.strerror})") from exc
    finally:
        plt.close(fig)
