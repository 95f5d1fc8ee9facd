"""Every labelled case of the real-log corpus (fixtures/corpus) gets its verdict.

For each case: its main code is raised at error or warning level, every expected code is
raised, no forbidden code is raised, and a healthy case gets no error. The doctor runs as a
user runs it (`python -m tbx_doctor check FILES --format json`), through the scorer
benchmarks/score_corpus.py, once for the whole corpus.

KNOWN_MISSES lists the cases the doctor gets wrong today, each with why. They are strict
xfails: a case that starts passing fails the suite until it is removed from the dict.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_scorer():
    path = REPO / "benchmarks" / "score_corpus.py"
    spec = importlib.util.spec_from_file_location("score_corpus", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["score_corpus"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


scorer = _load_scorer()
CASES = scorer.load_cases()

# case id -> why the doctor misses it today (shrink this as the doctor learns).
KNOWN_MISSES: dict[str, str] = {
    "deep-object-pose-220-healthy": "a log cut mid-training is not called incomplete-log",
    "detr-460-healthy-one-line": "a log cut mid-training is not called incomplete-log",
    "mmdet-3446-healthy-cascade": "a log cut mid-training is not called incomplete-log",
    "detectron2-214-healthy-events": "a log cut mid-training is not called incomplete-log",
    "keras-retinanet-327-healthy-epoch": "a log cut mid-training is not called incomplete-log",
    "spsr-38-healthy-gan-iterations": "a log cut mid-training is not called incomplete-log",
    "uctransnet-2-healthy-iterations": "a log cut mid-training is not called incomplete-log",
    "mmdet-11893-nan-mmengine": "mmengine's `loss: nan` fields are not read as a NaN loss",
    "mmdet-5911-nan-some-iterations": "mmdet 2.x `loss: nan` not read; no incomplete-log",
    "kohya-ss-1270-childfailed-root-cause": "torchelastic Root Cause block not read",
    "pla-18-childfailed-ranks": "torchelastic ChildFailedError failures not read",
    "llamafactory-8261-nccl-after-tqdm": "NCCL watchdog line glued to a tqdm bar is missed",
    "dcpdn-12-dataloader-killed": "DataLoader worker killed by SIGKILL is not host memory",
    "yolov3-165-dataloader-killed": "DataLoader worker killed by SIGKILL is not host memory",
    "mmdet-3495-dataloader-killed": "traceback tail without header: nothing raised",
    "pytorch-8976-dataloader-killed-chained": "chained traceback: the cause (worker killed) lost",
    "db-94-dataloader-segfault": "a lone RuntimeError line (no Traceback header) is missed",
    "grit-57-msda-missing": "missing MultiScaleDeformableAttention op is not a config error",
    "sniper-55-keyerror-area": "KeyError 'area' in dataset code is not a data error",
    "softteacher-105-keyerror-file-name": "KeyError 'file_name' in CocoDataset is not a data error",
    "detectors-13-device-assert-n-classes": "device-side assert n_classes is not read",
    "mmdet-2461-device-assert-ssd": "device-side assert n_classes is not read",
    "batchformer-22-device-assert-matcher": "device-side assert is not read as a config error",
}


@pytest.fixture(scope="module")
def outcomes() -> dict:
    return {o.case["id"]: o for o in scorer.score_all(cases=CASES)}


def _params():
    for case in CASES:
        reason = KNOWN_MISSES.get(case["id"])
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(case["id"], id=case["id"], marks=marks)


@pytest.mark.parametrize("case_id", list(_params()))
def test_case_verdict(outcomes, case_id):
    outcome = outcomes[case_id]
    assert outcome.ok, f"{case_id}: " + "; ".join(outcome.misses)


def test_known_misses_name_real_cases():
    assert set(KNOWN_MISSES) <= {case["id"] for case in CASES}


def test_labels_are_consistent():
    known = _doctor_codes()
    for case in CASES:
        labels = set(case["expect"]) | set(case["forbid"]) | ({case["main"]} - {""})
        assert labels <= known, f"{case['id']}: unknown codes {labels - known}"
        assert case["healthy"] == (case["main"] == ""), case["id"]
        assert not set(case["expect"]) & set(case["forbid"]), case["id"]
        assert case["healthy"] or case["main"] in case["expect"], case["id"]


def _doctor_codes() -> set[str]:
    """The finding codes `tbx-doctor codes` lists."""
    done = subprocess.run(
        [sys.executable, "-m", "tbx_doctor", "codes"], capture_output=True, text=True, check=True
    )
    return {line.split()[0] for line in done.stdout.splitlines() if line.strip()}
