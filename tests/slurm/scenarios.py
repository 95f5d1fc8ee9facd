"""The six end-to-end scenarios of issue 7, submitted together so they run concurrently.

`submit_all` lays out one project folder per scenario, submits every first job at once (the
refused resubmission waits on the fresh run through `--dependency`), cancels the scancel
scenario's job as soon as it is training, and returns the job ids. The tests then wait for each
job (and for the jobs a chain submits itself) and check what SLURM, the logs and the doctor say.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from .cluster import ClusterError, LocalCluster, poll
from .project import (
    SCRIPT_1GPU,
    SCRIPT_2GPU,
    job_env,
    job_logs,
    make_project,
    run_dir,
    write_synthetic_data,
)

# Two epochs over MAIN_IMAGES must still be training when SLURM's USR1 warning arrives (25-55 s
# after the job starts) even on an idle machine, so the time-limit job is always stopped mid-run.
# The fresh run trains the same data with the same seed: the time-limit chain's uninterrupted twin.
MAIN_IMAGES = 72
SMALL_IMAGES = 12
# Seconds after the plan's line: tbx-train run has started, but importing torch and the model
# takes longer (3-5 s of CPU), so the signal lands before its training loop runs.
STARTING_DELAY = 2.0
TIME_LIMIT_ARGS = ["--time=1", "--signal=B:USR1@5"]  # USR1 lands 25-55 s in, TERM at 60-90 s


@dataclass
class Scenario:
    """One scenario: its project folder and the first job's id."""

    project: Path
    job_id: int

    def logs(self, job_id: int | None = None) -> tuple[Path, Path]:
        return job_logs(self.project, job_id or self.job_id)

    def run_dir(self, job_id: int | None = None) -> Path:
        return run_dir(self.project, job_id or self.job_id)


@dataclass
class Scenarios:
    fresh: Scenario
    refused: Scenario
    time_limit: Scenario
    cancelled: Scenario
    crash: Scenario
    two_tasks: Scenario
    early_warning: Scenario  # SLURM's USR1 arrives while tbx-train is still starting
    submitted_at: float = field(default_factory=time.monotonic)


def corrupt_copy(source: Path, target: Path) -> str:
    """Copy a synthetic data set and overwrite its first training image with garbage; returns
    that image's file name."""
    import shutil

    shutil.copytree(source, target)
    train = json.loads((target / "annotations/json/TBX11K_train.json").read_text())
    name = train["images"][0]["file_name"]
    (target / "imgs" / name).write_bytes(b"this is not a PNG or JPEG\n" * 8)
    return name


def wait_for_line(cluster: LocalCluster, scenario: Scenario, text: str, timeout: float) -> None:
    """Wait until the running job's `.out` contains `text`."""
    out, _ = scenario.logs()

    def seen() -> bool | None:
        info = cluster.job_info(scenario.job_id)
        if info.get("JobState") not in ("PENDING", "RUNNING"):
            state = f"{info.get('JobState')} {info.get('ExitCode')}"
            raise ClusterError(f"job {scenario.job_id} ended ({state}) before {text!r}: {out}")
        return True if out.exists() and text in out.read_text() else None

    poll(seen, timeout, f"job {scenario.job_id} to print {text!r}", interval=0.3)


def _warn_while_starting(cluster: LocalCluster, scenario: Scenario, timeout: float) -> None:
    """Send SLURM's time-limit warning (USR1 to the batch shell, as `--signal=B:USR1` does)
    while `tbx-train run` is starting: the plan has printed, the run is importing its modules."""
    wait_for_line(cluster, scenario, "Run plan:", timeout)
    time.sleep(STARTING_DELAY)
    cluster.client("scancel", "--batch", "--signal=USR1", str(scenario.job_id))


def submit_all(cluster: LocalCluster, base: Path) -> Scenarios:
    """Write the data sets, submit every scenario, send the signals the scenarios need."""
    main, small = base / "data-main", base / "data-small"
    write_synthetic_data({main: (MAIN_IMAGES, 0), small: (SMALL_IMAGES, 1)})
    corrupt_copy(small, base / "data-corrupt")

    def submit(name: str, data: Path, script: str = SCRIPT_1GPU, args=(), **env: str) -> Scenario:
        project = make_project(base / name, data)
        job = cluster.submit(script, list(args), env=job_env(project, **env), cwd=project)
        return Scenario(project, job)

    fresh = submit("fresh", main)
    # The incident: the same run submitted again to "continue" after it finished every epoch.
    resume_from = fresh.run_dir() / "checkpoint.pth"
    refused = Scenario(fresh.project, 0)
    refused.job_id = cluster.submit(
        SCRIPT_1GPU,
        [f"--dependency=afterany:{fresh.job_id}"],
        env=job_env(fresh.project, TBX_RESUME=str(resume_from)),
        cwd=fresh.project,
    )
    scenarios = Scenarios(
        fresh=fresh,
        refused=refused,
        time_limit=submit("time-limit", main, args=TIME_LIMIT_ARGS),
        cancelled=submit("cancelled", main),
        crash=submit("crash", base / "data-corrupt"),
        two_tasks=submit("two-tasks", small, script=SCRIPT_2GPU),
        early_warning=submit("early-warning", small),
    )
    _warn_while_starting(cluster, scenarios.early_warning, timeout=240)
    # scancel once training runs: the doctor must see a job cut mid-run.
    wait_for_line(cluster, scenarios.cancelled, "Epoch: [0]", timeout=240)
    cluster.cancel(scenarios.cancelled.job_id)
    return scenarios


def chain_successor(out: Path) -> int | None:
    """The job id a stopped job submitted to continue its run (the script's own line), if any."""
    for line in out.read_text().splitlines():
        if line.startswith("[tbx-job] Submitted job "):
            return int(line.split()[3])
    return None


def follow_chain(cluster: LocalCluster, scenario: Scenario, timeout: float) -> list[dict]:
    """Wait for the scenario's job and every job its chain submitted; their final records."""
    records, job = [], scenario.job_id
    deadline = time.monotonic() + timeout
    while job:
        info = cluster.wait_final(job, timeout=max(deadline - time.monotonic(), 1))
        records.append(info)
        job = chain_successor(scenario.logs(job)[0])
    return records
