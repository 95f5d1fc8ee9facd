"""`tbx-doctor hook`: the post-job entry for sbatch scripts.

Finds the job's log (`--log`, else SLURM: `scontrol show job -o $SLURM_JOB_ID` StdOut/StdErr,
else `*_<jobid>.out` in ./logs or .), writes `<log stem>.doctor.json` beside it and prints a
short summary. It never fails the job unless `--strict` (then exit 1 on findings, 2 when no log).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from tbx_doctor.commands.check import Expect, exit_code
from tbx_doctor.errors import DoctorError, InputNotFound

OTHER_FINDINGS = 3  # findings beyond those telling how the job ended (those are never cut)


def _scontrol_paths(job_id: str) -> list[Path]:
    """StdOut / StdErr of the job as SLURM reports them (empty when scontrol is absent)."""
    exe = shutil.which("scontrol")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "show", "job", "-o", job_id],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    fields = dict(tok.split("=", 1) for tok in out.split() if "=" in tok)
    return [
        Path(fields[k]) for k in ("StdOut", "StdErr") if fields.get(k) and Path(fields[k]).is_file()
    ]


def find_job_log(env: dict[str, str], cwd: Path) -> Path:
    """The running job's log file; raise InputNotFound naming what was tried."""
    job_id = env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID")
    if not job_id:
        raise InputNotFound("no --log given and SLURM_JOB_ID is not set (not inside a SLURM job)")
    found = _scontrol_paths(job_id)
    if found:
        outs = [p for p in found if not p.name.endswith(".err")]
        return (outs or found)[0]
    for folder in (cwd / "logs", cwd):
        for pattern in (f"*_{job_id}.out", f"*-{job_id}.out", f"slurm-{job_id}.out"):
            hits = sorted(folder.glob(pattern))
            if hits:
                return hits[0]
    raise InputNotFound(
        f"job {job_id}: scontrol gave no StdOut and no *_{job_id}.out in ./logs or ."
    )


SUMMARY_WIDTH = 80


def report_path(log: Path) -> Path:
    name = log.name.removesuffix(".gz")
    for suffix in (".out", ".err", ".log"):
        name = name.removesuffix(suffix)
    return log.with_name(name + ".doctor.json")


def summary_lines(report: dict) -> list[str]:
    """How the job ended first (verdict, job, the ending in words), then the findings that
    tell the ending (all of them), then up to OTHER_FINDINGS others and how many are left."""
    from tbx_doctor.report import glance

    job = report["run"].get("job_id") or report["files"][0]
    lines = [f"tbx-doctor: {report['verdict'].upper()}: job {job}: {glance.how_it_ended(report)}"]
    ordered = glance.ending_first(report["findings"])
    ending = [f for f in ordered if f["code"] in glance.ENDING_CODES]
    shown = ending + ordered[len(ending) :][:OTHER_FINDINGS]
    lines.extend(f"  {f['severity']}: {f['code']}: {f['title']}" for f in shown)
    if len(ordered) > len(shown):
        lines.append(f"  (+{len(ordered) - len(shown)} more in the report)")
    # The job's .out is read in terminals and pagers: 80 columns, continuation lines indented.
    # The headline stays one line: it is what `grep tbx-doctor: slurm-*.out` shows.
    return lines[:1] + [part for line in lines[1:] for part in _wrap(line)]


def _wrap(line: str) -> list[str]:
    import textwrap

    indent = " " * (len(line) - len(line.lstrip()) + 4)
    return textwrap.wrap(line, SUMMARY_WIDTH, subsequent_indent=indent, break_on_hyphens=False)


def command(
    log: Annotated[
        Path | None, typer.Option(help="The job's log; default: found from the SLURM environment.")
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 on warning/error findings, 2 if no log is found.")
    ] = False,
    expect: Annotated[
        Expect | None, typer.Option(help="The path the run should have taken.")
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option(envvar="TBX_DOCTOR_PROFILE", help="TOML file of expectations."),
    ] = None,
) -> None:
    """Post-job hook: diagnose the log, write <stem>.doctor.json beside it, print a summary."""
    raise typer.Exit(run(log, strict, expect.value if expect else None, profile))


def run(
    log: Path | None, strict: bool, expect: str | None = None, profile: Path | None = None
) -> int:
    """Diagnose, write the JSON report, print the summary; return the exit code."""
    from tbx_doctor.diagnosis import diagnose
    from tbx_doctor.profile.expectations import load_profile
    from tbx_doctor.report import render as report

    try:
        path = log or find_job_log(dict(os.environ), Path.cwd())
        # The hook runs after the trainer ended: the log is complete even if just written.
        reports = diagnose([path], load_profile(profile, expect), log_complete=True)
    except DoctorError as exc:
        print(f"tbx-doctor: error: {exc}", file=sys.stderr)  # the job still exits 0
        return 2 if strict else 0
    target = report_path(path)
    try:
        target.write_text(report.render_json(reports) + "\n", encoding="utf-8")
        written = f"report: {target}"
    except OSError as exc:
        written = f"report not written ({target}: {exc.strerror})"
    for r in reports:
        print("\n".join(summary_lines(r.to_dict())))
    print(f"  {written}")
    return exit_code(reports, True) if strict else 0
