"""Invariants of the chain builder over random resume graphs (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tbx_doctor.history.chain import build_chains
from tbx_doctor.history.rows import EpochPoint, JobRow


def _row(job: str, parent: str | None, first: int, last: int) -> JobRow:
    epochs = tuple(EpochPoint(e, True, 1.0, 0.1, 0.2, None, 60.0) for e in range(first, last + 1))
    return JobRow(
        job_id=job, kind="train", start=f"2025-11-{10 + int(job) % 10:02d}T00:00:{job[-2:]}",
        end=None, wall_seconds=3600.0, wall_estimated=False, gpus=1, ending="time limit",
        ending_detail=None, path="resume" if parent else "pretrained",
        source_checkpoint=f"/o/run_{parent}/checkpoint.pth" if parent else None,
        source_job=parent, source_epoch=None, epochs_planned=50, first_epoch=first,
        last_epoch=last, last_epoch_finished=True, iterations_per_epoch=10, iterations=None,
        seconds_per_epoch=60.0, last_loss=1.0, last_ap=0.1, last_ap50=0.2, last_ema_ap=None,
        effective_batch=2, strategy="1x2x1", lost_seconds=0.0, verdict="warning", findings=(),
        files=(), output_dir=f"/o/run_{job}", epochs=epochs,
    )  # fmt: skip


@st.composite
def graphs(draw) -> list[JobRow]:
    n = draw(st.integers(1, 8))
    rows = []
    for i in range(n):
        job = str(100 + i)
        parent = draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None
        first = draw(st.integers(0, 5))
        rows.append(_row(job, None if parent is None else str(100 + parent), first, first + 2))
    return rows


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_each_job_in_one_chain_and_links_form_a_forest(rows):
    history = build_chains(rows)
    members = [job for chain in history.chains for job in chain.jobs]
    assert sorted(members) == sorted(r.job_id for r in rows)
    links = [link for chain in history.chains for link in chain.links]
    assert len(links) == len(rows) - len(history.chains)
    for chain in history.chains:
        # Parents come before their children.
        for link in chain.links:
            assert chain.jobs.index(link.source_job) < chain.jobs.index(link.job)
    forks = {p.jobs[0] for p in history.problems if p.kind == "fork"}
    parents = [r.source_job for r in rows if r.source_job]
    assert forks == {p for p in parents if parents.count(p) > 1}
    assert history.overall["gpu_hours"] == len(rows)
