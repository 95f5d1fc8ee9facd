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
    "deep-object-pose-220-healthy": "cut mid-training, not called incomplete-log",
    "detr-460-healthy-one-line": "cut mid-training, not called incomplete-log",
    "mmdet-3446-healthy-cascade": "cut mid-training, not called incomplete-log",
    "detectron2-214-healthy-events": "cut mid-training, not called incomplete-log",
    "keras-retinanet-327-healthy-epoch": "cut mid-training, not called incomplete-log",
    "spsr-38-healthy-gan-iterations": "cut mid-training, not called incomplete-log",
    "uctransnet-2-healthy-iterations": "cut mid-training, not called incomplete-log",
    "mmdet-2672-healthy-v1-start": "cut mid-training, not called incomplete-log",
    "tabnet-198-healthy-epochs": "cut mid-training, not called incomplete-log",
    "detectron-918-healthy-json-stats": "cut mid-training, not called incomplete-log",
    "d-fine-334-healthy-epoch-summary": "cut mid-training, not called incomplete-log",
    "ultralytics-20531-healthy-yolov8-start": "cut mid-training, not called incomplete-log",
    "yolov5-deepsparse-11-healthy-epochs": "cut mid-training, not called incomplete-log",
    "mmdet-11893-nan-mmengine": "mmengine `loss: nan` fields are not read as NaN",
    "mmdet-5911-nan-some-iterations": "mmdet 2.x `loss: nan` not read; no incomplete-log",
    "relernn-26-keras-nan": "Keras `loss: nan` is not read as NaN",
    "jointnlt-18-nan-exception": "an exception naming NAN is not a NaN loss",
    "ipex-llm-1486-loss-infinity": "`Loss is Infinity` is not read as non-finite",
    "zsd-24-mmdet-loss-explosion": "mmdet loss rising 0.8 -> 1e13 is not read",
    "keras-21-loss-explosion": "Keras per-epoch loss jump is not read",
    "tf-models-8423-loss-explosion": "TF `global step N: loss = X` jump is not read",
    "kohya-ss-1270-childfailed-root-cause": "torchelastic Root Cause block is not read",
    "pla-18-childfailed-ranks": "torchelastic ChildFailedError failures are not read",
    "yolov5-pytorch-79-root-cause": "torchelastic Root Cause block is not read",
    "minigpt4-237-elastic-exitcode-6": "launcher traceback blamed, not the failed worker",
    "stratified-transformer-3-srun-segfault": "srun `task 0: Segmentation fault` is not read",
    "llamafactory-8261-nccl-after-tqdm": "NCCL watchdog glued to a tqdm bar is missed",
    "dcpdn-12-dataloader-killed": "worker killed by SIGKILL is not host memory",
    "yolov3-165-dataloader-killed": "worker killed by SIGKILL is not host memory",
    "mmdet-3495-dataloader-killed": "traceback tail without header: nothing raised",
    "pytorch-8976-dataloader-killed-chained": "worker killed by SIGKILL is not host memory",
    "arjuna-52-killed-interactive": "the shell's bare `Killed` is not read",
    "pipedream-28-bus-error-shm": "DataLoader bus error (shm) is not host memory",
    "mmseg-1356-bus-error-bold": "DataLoader bus error (shm) is not host memory",
    "mmf-441-bus-error-after-start": "DataLoader bus error (shm) is not read",
    "rfbnet-77-bus-error-at-start": "DataLoader bus error (shm) is not host memory",
    "amvur-2-root-cause-sigkill": "a rank's SIGKILL (-9) is not host memory",
    "self-rag-83-elastic-exitcode-9": "a worker's exitcode -9 is not host memory",
    "k-net-30-oom-kill-then-cancel": "the OOM's step cancel is also called `cancelled`",
    "db-94-dataloader-segfault": "a lone RuntimeError line is missed",
    "wav2letter-308-sigsegv-native": "a native SIGSEGV stack trace is missed",
    "grit-57-msda-missing": "missing MultiScaleDeformableAttention op: not config",
    "detectors-13-device-assert-n-classes": "device-side assert n_classes is not read",
    "mmdet-2461-device-assert-ssd": "device-side assert n_classes is not read",
    "batchformer-22-device-assert-matcher": "device-side assert is not a config error",
    "sniper-55-keyerror-area": "KeyError 'area' in dataset code is not data",
    "softteacher-105-keyerror-file-name": "KeyError 'file_name' in CocoDataset is not data",
    "box-discretization-18-filenotfound-worker": "FileNotFoundError in a worker is not data",
    "detectron2-2045-filenotfound-worker": "FileNotFoundError in a worker is not data",
    "detectron-560-caffe2-oom": "Caffe2 `out of memory` enforce is not CUDA OOM",
    "arjuna-21-execve-batch-script": "slurmstepd's execve error is missed",
    "cscfi-ddp-1-execve-torchrun": "missing torchrun (execve) is not config",
    "wandb-on-slurm-5-execve-permission": "execve Permission denied is not config",
    "dinov2-445-training-then-ipc-warning": "cut mid-training, not called incomplete-log",
    "fb-dino-69-healthy-two-lines": "cut mid-training, not called incomplete-log",
    "fb-dino-76-healthy-log-txt": "cut mid-training, not called incomplete-log",
    "pytorch-examples-1279-childfailed-two-nodes": "ChildFailedError summaries are not read",
    "unsloth-10-rank3-failed-others-sigterm": "launcher traceback blamed, not rank 3's failure",
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


def test_corpus_is_big_and_varied_enough():
    assert len(CASES) >= 60
    assert len({case["repo"] for case in CASES}) >= 10
    assert sum(case["healthy"] for case in CASES) >= 10


def test_labels_are_consistent():
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


def _doctor_codes() -> set[str]:
    """The finding codes `tbx-doctor codes` lists."""
    done = subprocess.run(
        [sys.executable, "-m", "tbx_doctor", "codes"], capture_output=True, text=True, check=True
    )
    return {line.split()[0] for line in done.stdout.splitlines() if line.strip()}
