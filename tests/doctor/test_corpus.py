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
KNOWN_MISSES: dict[str, str] = {}


@pytest.fixture(scope="module")
def outcomes() -> dict:
    return {o.case["id"]: o for o in scorer.score_all(cases=CASES)}


def case_params(cases: list[dict], known_misses: dict[str, str]) -> list:
    """One pytest param per case; a known miss is a strict xfail (passing fails the suite)."""
    params = []
    for case in cases:
        reason = known_misses.get(case["id"])
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(case["id"], id=case["id"], marks=marks))
    return params


@pytest.mark.parametrize("case_id", case_params(CASES, KNOWN_MISSES))
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
    assert_labels_consistent(CASES)


def assert_labels_consistent(cases: list[dict]) -> None:
    """Every label is a code the doctor knows, and each case's fields agree with each other."""
    known = _doctor_codes()
    for case in cases:
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
