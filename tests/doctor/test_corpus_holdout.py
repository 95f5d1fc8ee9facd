"""Every labelled case of the held-out corpus (fixtures/corpus/holdout) gets its verdict.

The held-out set was collected and labelled apart from the development corpus
(fixtures/corpus), from the log text alone, and committed before the doctor ever ran on it.
It is never used to fix the doctor: its figures measure how the doctor does on logs nobody
tuned it for. Same checks as tests/doctor/test_corpus.py (whose scorer and helpers this
reuses): the main code raised at error or warning level, every expected code raised, no
forbidden code, no error on a healthy case.

KNOWN_MISSES lists the held-out cases the doctor gets wrong, each with why. They are strict
xfails: a case that starts passing fails the suite until it is removed from the dict.
"""

from __future__ import annotations

import pytest
from test_corpus import REPO, _doctor_codes, scorer

HOLDOUT = REPO / "fixtures" / "corpus" / "holdout"
CASES = scorer.load_cases(HOLDOUT)

# case id -> why the doctor misses it: measured on main at a30e2b6 (2026-12-04), never
# fixed against this set.
KNOWN_MISSES: dict[str, str] = {
    "c3nl-20-slurm-script-killed": "the batch shell's '<script>: line 9: <pid> Killed' is not read",
    "cellpose-450-healthy-epoch-lines": "cut mid-training, not called incomplete-log",
    "coqui-stt-2238-memory-limit-old-form": "the memory kill's JOB CANCELLED is `cancelled`",
    "cora-7-msda-module-missing": "missing MultiScaleDeformableAttention op: crash, not config",
    "detectron-327-eval-then-killed": "a bare 'Killed' after evaluation lines is not read",
    "fcos-6-healthy-maskrcnn-benchmark-iters": "cut mid-training, not called incomplete-log",
    "mmdet-2739-healthy-wrapped-lines": "cut mid-training, not called incomplete-log",
    "mmdet-64-healthy-v0-epoch-lines": "cut mid-training, not called incomplete-log",
    "mmdet-6452-healthy-start-epochs": "cut mid-training, not called incomplete-log",
    "mmdet-7065-healthy-detr-epoch-30": "cut mid-training, not called incomplete-log",
    "mmdet-9331-healthy-quoted-driver-lines": "cut mid-training, not called incomplete-log",
    "mmpose-922-keyerror-image-not-indexed": "traceback frames without a header: nothing raised",
    "mobilenetv3-fcos-healthy-test-then-training-time": "'Training time 2:46:21' tail: zero-epochs",
    "mobilenetv3-fcos-healthy-training-time-days": "'Training time 1 day, ...' tail: zero-epochs",
    "person-reid-372-n-classes-assert": "n_classes device-side assert: crash, not config",
    "pytracking-359-healthy-rts-epoch-35": "cut mid-training, not called incomplete-log",
    "sctnet-47-root-cause-all-ranks": "torchelastic Root Cause block is not read",
    "semseg-3-spatial-nll-assert": "n_classes device-side assert: crash, not config",
    "slrt-66-root-cause-eight-ranks": "torchelastic failures list / Root Cause is not read",
    "trans-svnet-6-nll-assert-at-start": "an n_classes assert line alone is not read",
    "ultralytics-21765-healthy-yolov8-epochs": "cut mid-training, not called incomplete-log",
    "visdet-339-mmengine-loss-grad-explosion": "mmengine loss 1.5 -> 63 jump is not read",
    "yolo-tutorials-1-keras-nan-epochs": "Keras `loss: nan` is not read as NaN",
}


@pytest.fixture(scope="module")
def outcomes() -> dict:
    return {o.case["id"]: o for o in scorer.score_all(HOLDOUT, cases=CASES)}


def _params():
    for case in CASES:
        reason = KNOWN_MISSES.get(case["id"])
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(case["id"], id=case["id"], marks=marks)


@pytest.mark.parametrize("case_id", list(_params()))
def test_holdout_case_verdict(outcomes, case_id):
    outcome = outcomes[case_id]
    assert outcome.ok, f"{case_id}: " + "; ".join(outcome.misses)


def test_holdout_known_misses_name_real_cases():
    assert set(KNOWN_MISSES) <= {case["id"] for case in CASES}


def test_holdout_is_big_varied_and_apart_from_the_dev_corpus():
    assert len(CASES) >= 30
    assert len({case["repo"] for case in CASES}) >= 10
    assert sum(case["healthy"] for case in CASES) >= 10
    dev_sources = {case["source"] for case in scorer.load_cases()}
    shared = sorted({case["source"] for case in CASES} & dev_sources)
    assert not shared, f"held-out logs also in the development corpus: {shared}"


def test_holdout_labels_are_consistent():
    known = _doctor_codes()
    for case in CASES:
        labels = set(case["expect"]) | set(case["forbid"]) | ({case["main"]} - {""})
        assert labels <= known, f"{case['id']}: unknown codes {labels - known}"
        assert case["healthy"] == (case["main"] == ""), case["id"]
        assert not set(case["expect"]) & set(case["forbid"]), case["id"]
        assert case["healthy"] or case["main"] in case["expect"], case["id"]
        assert case["trained"] in ("yes", "no", "unknown"), case["id"]
        assert case["kind"] in ("issue-paste", "committed-file"), case["id"]
        assert case["source"].startswith("https://github.com/" + case["repo"] + "/"), case["id"]
