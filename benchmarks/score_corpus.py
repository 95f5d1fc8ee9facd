"""Score tbx-doctor on the corpus of real public logs (fixtures/corpus).

Runs `tbx-doctor check <the case's files> --format json` on every case, as a user would,
and compares the findings with the case's label in fixtures/corpus/cases.toml:

- main-problem recall: the case's main code raised at error or warning level (problem cases);
- label recall: every code in `expect` raised (any severity), over all cases with an expect;
- recall per label code: for each code, over the cases that expect it;
- false alarms: error-level findings on healthy cases, and (separately) warnings on healthy
  cases that their label does not expect;
- forbidden codes raised: any code of a case's `forbid` list that the doctor raised.

Two more figures, reported but not part of a case's verdict (tests/doctor/test_corpus.py):
- "no training" stated as fact (the checklist's "Training starts" item failed, or zero-epochs /
  immediate-exit raised) on cases whose lines show training (`trained = "yes"`) or cannot tell
  (`trained = "unknown"`: that is unknown, not absent);
- job id: the report's run.job_id against the id the lines or SLURM's file-name patterns show
  (`job_id`); where none is shown, a number taken from a path is wrong.

Usage: python benchmarks/score_corpus.py [--json] [--table] [--subprocess] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "corpus"
LABEL_KEYS = ("id", "project", "files", "source", "healthy", "main", "expect", "forbid", "note")


@dataclass
class Outcome:
    """What the doctor said on one case, and where it differs from the label."""

    case: dict
    codes: dict[str, str] = field(default_factory=dict)  # code -> most severe severity raised
    verdict: str = ""
    failure: str = ""  # the doctor did not produce a report (exit code, stderr)
    misses: list[str] = field(default_factory=list)  # one line per wrong verdict
    says_no_training: bool = False  # checklist "Training starts" failed, or zero-epochs raised
    job_id: str | None = None  # run.job_id of the report

    @property
    def ok(self) -> bool:
        return not self.misses


def load_cases(corpus: Path = CORPUS) -> list[dict]:
    """The labelled cases of cases.toml, each checked for the keys the scorer needs."""
    with open(corpus / "cases.toml", "rb") as handle:
        cases = tomllib.load(handle)["case"]
    for case in cases:
        missing = [key for key in LABEL_KEYS if key not in case]
        if missing:
            raise ValueError(f"cases.toml: case {case.get('id')!r} lacks {missing}")
        for name in case["files"]:
            if not (corpus / case["id"] / name).is_file():
                raise ValueError(
                    f"cases.toml: case {case['id']!r} names {name!r}, not in its folder"
                )
    return cases


_RANK = {"info": 0, "warning": 1, "error": 2}


def run_doctor(case: dict, corpus: Path = CORPUS, in_process: bool = True) -> Outcome:
    """`tbx-doctor check FILES --format json` on one case: the console script's own entry
    point in this process (the same code path and output as the command), or a subprocess."""
    with _settled_copy(corpus / case["id"]) as folder:
        argv = ["check", *(str(folder / name) for name in case["files"]), "--format", "json"]
        stdout, stderr, returncode = _in_process(argv) if in_process else _subprocess(argv)
    outcome = Outcome(case)
    try:
        report = json.loads(stdout)  # json accepts the bare NaN the doctor may write
    except json.JSONDecodeError:
        outcome.failure = f"exit {returncode}, no JSON report: {stderr.strip()[-300:]}"
        return outcome
    outcome.verdict = report.get("verdict", "")
    job_id = (report.get("run") or {}).get("job_id")
    outcome.job_id = None if job_id is None else str(job_id)
    outcome.says_no_training = any(
        item.get("item", "").lower().startswith("training starts") and item.get("status") == "fail"
        for item in report.get("checklist", [])
    )
    for finding in report.get("findings", []):
        code, severity = finding["code"], finding["severity"]
        if _RANK.get(severity, 0) >= _RANK.get(outcome.codes.get(code, "info"), 0):
            outcome.codes[code] = severity
    outcome.says_no_training |= bool({"zero-epochs", "immediate-exit"} & set(outcome.codes))
    return outcome


SETTLED_MTIME = 1_577_836_800  # 2020-01-01: long before any check, as for a user's old log


@contextlib.contextmanager
def _settled_copy(case_dir: Path) -> Iterator[Path]:
    """The case's files copied with an old modification time.

    The doctor calls a log without an ending that changed in the last minutes "still growing"
    (running). A fresh clone gives every fixture a new mtime, so without this the verdicts would
    depend on how long ago the checkout was made.
    """
    with tempfile.TemporaryDirectory(prefix="corpus-") as tmp:
        folder = Path(shutil.copytree(case_dir, Path(tmp) / case_dir.name))
        for path in folder.rglob("*"):
            os.utime(path, (SETTLED_MTIME, SETTLED_MTIME))
        yield folder


def _in_process(argv: list[str]) -> tuple[str, str, int]:
    from tbx_doctor import cli  # the `tbx-doctor` console script's entry point

    out, err, saved_argv, returncode = io.StringIO(), io.StringIO(), sys.argv, 0
    sys.argv = ["tbx-doctor", *argv]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
    except SystemExit as stop:
        returncode = stop.code if isinstance(stop.code, int) else 1
    finally:
        sys.argv = saved_argv
    return out.getvalue(), err.getvalue(), returncode


def _subprocess(argv: list[str]) -> tuple[str, str, int]:
    command = [sys.executable, "-m", "tbx_doctor", *argv]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    return done.stdout, done.stderr, done.returncode


def judge(outcome: Outcome) -> Outcome:
    """Fill outcome.misses: every way the doctor's findings differ from the case's label."""
    case, codes = outcome.case, outcome.codes
    if outcome.failure:
        outcome.misses.append(outcome.failure)
        return outcome
    main = case["main"]
    if main and codes.get(main) not in ("error", "warning"):
        outcome.misses.append(f"main {main} not raised (got {_listing(codes)})")
    for code in case["expect"]:
        if code != main and code not in codes:
            outcome.misses.append(f"expected {code} not raised")
    for code in case["forbid"]:
        if code in codes:
            outcome.misses.append(f"forbidden {code} raised ({codes[code]})")
    if case["healthy"]:
        errors = sorted(code for code, sev in codes.items() if sev == "error")
        if errors:
            outcome.misses.append(f"error on a healthy log: {', '.join(errors)}")
    return outcome


def _listing(codes: dict[str, str]) -> str:
    return ", ".join(f"{code}:{sev}" for code, sev in sorted(codes.items())) or "nothing"


def score_all(
    corpus: Path = CORPUS, cases: list[dict] | None = None, in_process: bool = True
) -> list[Outcome]:
    """Judge every case: in this process one after the other (the entry point uses
    sys.argv and stdout), or in parallel subprocesses."""
    cases = load_cases(corpus) if cases is None else cases
    if in_process:
        return [judge(run_doctor(case, corpus)) for case in cases]
    workers = max(2, min(8, os.cpu_count() or 2))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda case: judge(run_doctor(case, corpus, False)), cases))


def figures(outcomes: list[Outcome]) -> dict:
    """The scorer's numbers (see the module docstring)."""
    problems = [o for o in outcomes if not o.case["healthy"]]
    healthy = [o for o in outcomes if o.case["healthy"]]
    labelled = [o for o in outcomes if o.case["expect"]]
    main_hits = [o for o in problems if o.codes.get(o.case["main"]) in ("error", "warning")]
    label_hits = [o for o in labelled if all(c in o.codes for c in o.case["expect"])]
    per_code: dict[str, list[int]] = {}
    for outcome in outcomes:
        for code in outcome.case["expect"]:
            hit_total = per_code.setdefault(code, [0, 0])
            hit_total[0] += code in outcome.codes
            hit_total[1] += 1
    error_alarms = [o for o in healthy if "error" in o.codes.values()]
    warn_alarms = [
        o
        for o in healthy
        if any(s == "warning" and c not in o.case["expect"] for c, s in o.codes.items())
    ]
    forbidden = Counter(c for o in outcomes for c in o.case["forbid"] if c in o.codes)
    claims = {
        shown: [
            sum(o.says_no_training for o in outcomes if o.case.get("trained") == shown),
            sum(o.case.get("trained") == shown for o in outcomes),
        ]
        for shown in ("yes", "unknown")
    }
    wrong_ids = {o.case["id"]: o.job_id for o in outcomes if not _job_id_right(o)}
    claimers = sorted(
        o.case["id"]
        for o in outcomes
        if o.says_no_training and o.case.get("trained") in ("yes", "unknown")
    )
    return {
        "cases": len(outcomes),
        "projects": len({o.case["project"] for o in outcomes}),
        "healthy": len(healthy),
        "main_recall": [len(main_hits), len(problems)],
        "label_recall": [len(label_hits), len(labelled)],
        "recall_per_code": {code: per_code[code] for code in sorted(per_code)},
        "healthy_with_error": [len(error_alarms), len(healthy)],
        "healthy_with_unexpected_warning": [len(warn_alarms), len(healthy)],
        "forbidden_raised": dict(sorted(forbidden.items())),
        "says_no_training_where_trained": claims["yes"],
        "says_no_training_where_unknown": claims["unknown"],
        "says_no_training_cases": claimers,
        "job_id_right": [len(outcomes) - len(wrong_ids), len(outcomes)],
        "job_id_wrong": wrong_ids,
        "cases_right": sum(o.ok for o in outcomes),
        "misses": {o.case["id"]: o.misses for o in outcomes if not o.ok},
    }


def _job_id_right(outcome: Outcome) -> bool:
    expected = outcome.case.get("job_id", "")
    if expected:
        return outcome.job_id == expected
    return outcome.job_id is None or not outcome.job_id.isdigit()


def _pct(pair: list[int]) -> str:
    hit, total = pair
    return f"{hit}/{total} ({100 * hit / total:.0f}%)" if total else "0/0"


def render(numbers: dict) -> str:
    lines = [
        f"corpus: {numbers['cases']} cases from {numbers['projects']} projects, "
        f"{numbers['healthy']} healthy",
        f"main-problem recall (error/warning): {_pct(numbers['main_recall'])}",
        f"label recall (every expected code):  {_pct(numbers['label_recall'])}",
        f"false alarms, error on healthy:      {_pct(numbers['healthy_with_error'])}",
        f"unexpected warnings on healthy:      {_pct(numbers['healthy_with_unexpected_warning'])}",
        "forbidden codes raised: "
        + (", ".join(f"{c} x{n}" for c, n in numbers["forbidden_raised"].items()) or "none"),
        f"cases fully right: {numbers['cases_right']}/{numbers['cases']}",
        f"'no training' stated where the lines show training: "
        f"{_pct(numbers['says_no_training_where_trained'])}",
        f"'no training' stated where the lines cannot tell:  "
        f"{_pct(numbers['says_no_training_where_unknown'])}",
        f"job id right: {_pct(numbers['job_id_right'])}",
        "recall per label code:",
    ]
    lines += [f"  {code:<18} {_pct(pair)}" for code, pair in numbers["recall_per_code"].items()]
    lines.append("'no training' stated on (trained yes/unknown):")
    lines += [f"  {case_id}" for case_id in numbers["says_no_training_cases"]]
    lines.append("job ids wrong (case: reported):")
    lines += [f"  {cid}: {jid}" for cid, jid in sorted(numbers["job_id_wrong"].items())]
    lines.append("misses:")
    for case_id, misses in sorted(numbers["misses"].items()):
        lines.append(f"  {case_id}: {'; '.join(misses)}")
    return "\n".join(lines)


def table(cases: list[dict]) -> str:
    """The provenance table: id, project, source, label."""
    rows = ["| id | project | source | label |", "| --- | --- | --- | --- |"]
    for case in cases:
        label = "healthy" if case["healthy"] else case["main"]
        rows.append(f"| {case['id']} | {case['project']} | {case['source']} | {label} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--table", action="store_true", help="print the provenance table only")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="corpus folder")
    parser.add_argument(
        "--subprocess", action="store_true", help="run `python -m tbx_doctor` per case"
    )
    args = parser.parse_args(argv)
    if args.table:
        print(table(load_cases(args.corpus)))
        return 0
    numbers = figures(score_all(args.corpus, in_process=not args.subprocess))
    print(json.dumps(numbers, indent=2) if args.json else render(numbers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
