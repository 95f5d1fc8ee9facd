"""Loss and AP along a whole chain, with the learning findings and where they became visible.

`chain_curve` joins the finished epochs of a chain's jobs (a later job's epoch replaces an
earlier one's) into one trajectory, runs the learning rules on it (`rules.learning`), and
keeps per epoch the values, their trends and the reference band when one is given. The text
table marks each event under the AP sparkline (`^`), the PNG draws it, the JSON lists it.
`compare_lines` sets two chains side by side, epoch by epoch, on one scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tbx_doctor.facts.trajectory import Sample, Trajectory
from tbx_doctor.facts.trend import trend
from tbx_doctor.history.chain import Chain, History, row_key
from tbx_doctor.history.rows import JobRow
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.report.sparkline import scale_note, sparkline
from tbx_doctor.rules.learning import learning_findings, learning_marks, pct

PREFIX = " " * 7  # width of "  AP   " in history.render.chain_lines


@dataclass(frozen=True)
class Mark:
    code: str
    visible: int  # first epoch the condition showed
    confirmed: int  # epoch at which the doctor calls it


@dataclass(frozen=True)
class Curve:
    """One chain's per-epoch numbers and learning verdicts (JSON: `to_dict`)."""

    jobs: tuple[str, ...]
    epochs: tuple[dict, ...]  # {epoch, job, loss, ap, loss_trend, ap_trend, band}
    marks: tuple[Mark, ...]
    findings: tuple[dict, ...]  # {code, severity, title, explanation}
    reference: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def chain_trajectory(chain: Chain, rows: dict[str, JobRow]) -> tuple[Trajectory, dict[int, str]]:
    """The chain's finished epochs (later jobs win) and which job trained each."""
    samples: dict[int, Sample] = {}
    owner: dict[int, str] = {}
    for job in chain.jobs:
        for p in rows[job].epochs:
            if p.finished and (p.loss is not None or p.ap is not None):
                samples[p.epoch] = Sample(p.epoch, p.loss, p.ap, None)
                owner[p.epoch] = job
    resumes = tuple(sorted(link.first_epoch for link in chain.links if link.first_epoch))
    running = any(rows[j].ending == "running" for j in chain.jobs)
    return Trajectory(tuple(samples[e] for e in sorted(samples)), resumes, running), owner


def chain_curve(chain: Chain, rows: dict[str, JobRow], profile: Profile) -> Curve:
    traj, owner = chain_trajectory(chain, rows)
    window = int(profile.learning.window)
    loss_trend = dict(trend(traj.series("loss"), window))
    ap_trend = dict(trend(traj.series("ap"), window))
    bands = profile.bands.by_epoch if profile.bands else {}
    epochs = tuple(
        {
            "epoch": s.epoch, "job": owner[s.epoch], "loss": s.loss, "ap": s.ap,
            "loss_trend": loss_trend.get(s.epoch), "ap_trend": ap_trend.get(s.epoch),
            "band": asdict(bands[s.epoch]) if s.epoch in bands else None,
        }
        for s in traj.samples
    )  # fmt: skip
    label = "chain " + " -> ".join(chain.jobs)
    found = learning_findings(traj, profile, f"the last job of {label}")
    return Curve(
        chain.jobs,
        epochs,
        tuple(Mark(*m) for m in learning_marks(traj, profile)),
        tuple(_finding_dict(f) for f in found),
        profile.bands.origin if profile.bands else None,
    )


def _finding_dict(found) -> dict:
    return {k: getattr(found, k) for k in ("code", "severity", "title", "explanation")}


def chain_curves(chains: list[Chain], rows: list[JobRow], profile: Profile) -> list[Curve]:
    by_id = {row_key(r): r for r in rows}
    return [chain_curve(c, by_id, profile) for c in chains]


def _position(members: list[JobRow], epoch: int) -> int | None:
    """Column of `epoch` in chain_lines' sparkline (one cell per epoch point, `│` between jobs)."""
    column, found = 0, None
    for row in members:
        for p in row.epochs:
            if p.epoch == epoch:
                found = column  # a repeated epoch: the later job's cell
            column += 1
        column += 1  # the separator
    return found


def curve_lines(curve: Curve | None, members: list[JobRow]) -> list[str]:
    """`^` under the AP sparkline at each event's visible epoch, then one line per finding."""
    if curve is None:
        return []
    lines = []
    for mark in curve.marks:
        column = _position(members, mark.visible)
        pointer = " " * column + "^ " if column is not None else ""
        lines.append(
            f"{PREFIX}{pointer}{mark.code}: visible at epoch {mark.visible}, "
            f"called at epoch {mark.confirmed}"
        )
    lines += [f"  {f['severity'].upper()} {f['code']}: {f['title']}" for f in curve.findings]
    if not curve.findings and curve.epochs:
        lines.append("  learning: no finding (AP and loss trends as expected)")
    return lines


def _by_epoch(curve: Curve, key: str) -> dict[int, float | None]:
    return {e["epoch"]: e[key] for e in curve.epochs}


def compare_lines(a: Curve, b: Curve) -> list[str]:
    """Two chains side by side: sparklines on one scale, then a row per epoch."""
    epochs = sorted(set(_by_epoch(a, "ap")) | set(_by_epoch(b, "ap")))
    lines = [f"Compare A: {' -> '.join(a.jobs)}  with  B: {' -> '.join(b.jobs)}"]
    for key, label, percent in (("loss", "loss", False), ("ap", "AP  ", True)):
        va, vb = _by_epoch(a, key), _by_epoch(b, key)
        segments = [[va.get(e) for e in epochs], [vb.get(e) for e in epochs]]
        line_a, line_b = sparkline(segments).split("│")
        note = scale_note(segments, percent)
        lines += [f"  {label} A {line_a}  {note}", f"  {label} B {line_b}"]
    for name, curve in (("A", a), ("B", b)):
        for mark in curve.marks:
            lines.append(f"  {name}: {mark.code} visible at epoch {mark.visible}, "
                         f"called at epoch {mark.confirmed}")  # fmt: skip
    lines.append("  epoch   loss A   loss B     AP A     AP B")
    la, lb = _by_epoch(a, "loss"), _by_epoch(b, "loss")
    pa, pb = _by_epoch(a, "ap"), _by_epoch(b, "ap")
    for e in epochs:
        cells = [_num(la.get(e)), _num(lb.get(e)), pct(pa.get(e)), pct(pb.get(e))]
        lines.append(f"  {e:>5}" + "".join(f"{c:>9}" for c in cells))
    return lines


def _num(value: float | None) -> str:
    return "?" if value is None else f"{value:.3f}"


def learning_lines(history: History, chain: Chain, rows: dict[str, JobRow]) -> list[str]:
    """The chain's learning marks and findings, and the --compare chains beside it."""
    curve = next((c for c in history.curves if c.jobs == chain.jobs), None)
    lines = curve_lines(curve, [rows[j] for j in chain.jobs])
    for other in history.compared if curve is not None else ():
        lines += compare_lines(curve, other)
    return lines


def with_curves(paths: list, reference=None, compare: list | None = None) -> History:
    """build_history + build_chains, with each chain's Curve (and the --compare chains')."""
    from tbx_doctor.history.chain import build_chains
    from tbx_doctor.history.rows import build_history
    from tbx_doctor.profile.bands import with_reference

    profile = with_reference(Profile(), reference)
    history = build_chains(build_history(paths, profile))
    history.curves = chain_curves(history.chains, history.rows, profile)
    if compare:
        other = build_chains(build_history(compare, profile))
        history.compared = chain_curves(other.chains, other.rows, profile)
    return history


def draw_learning(loss_ax, ap_ax, chain: Chain, history: History) -> None:
    """On the PNG: the reference band, the --compare chains (grey), each event's epoch."""
    curve = next((c for c in history.curves if c.jobs == chain.jobs), None)
    if curve is None:
        return
    banded = [e for e in curve.epochs if e["band"] and e["band"]["ap_low"] is not None]
    if banded:  # AP after epoch e is drawn at e + 1 (plot.py's convention)
        xs = [e["epoch"] + 1 for e in banded]
        low = [e["band"]["ap_low"] * 100 for e in banded]
        high = [e["band"]["ap_high"] * 100 for e in banded]
        ap_ax.fill_between(xs, low, high, color="0.6", alpha=0.2, label="reference band")
    for other in history.compared:
        points = [(e["epoch"] + 1, e["ap"] * 100) for e in other.epochs if e["ap"] is not None]
        if points:
            ap_ax.plot(*zip(*points, strict=True), color="0.5", lw=1, ls="-.",
                       label=f"AP of {' → '.join(other.jobs)}")  # fmt: skip
    for n, mark in enumerate(curve.marks):
        colour = "#C44E52" if mark.code == "ap-collapsed" else "#DD8452"
        for ax in (loss_ax, ap_ax):
            ax.axvline(mark.visible + 1, color=colour, lw=1.5, ls=":")
        ap_ax.annotate(
            f"{mark.code}\nvisible {mark.visible}, called {mark.confirmed}",
            (mark.visible + 1.2, 0.95 - 0.16 * n), xycoords=("data", "axes fraction"),
            fontsize=7, color=colour, ha="left", va="top",
        )  # fmt: skip
    ap_ax.legend(loc="upper right", fontsize=8)
