"""The README's `tbx-doctor` examples run as written, against the real logs.

Every `tbx-doctor ...` line of the README's bash blocks is found and run, in a folder laid out
as the README assumes (`logs/`, `outputs/`, `job.out`, `my.toml`): the real logs and run folders,
the incident's failed job, a small checkpoint and a finished `logs/train_123.out`. Each command
must be listed in EXPECTED with its exit code: an example added to the README without a line
here, or one removed from it, fails the test instead of silently changing what is covered.
Text blocks starting with `$ tbx-doctor ...` are screenshots: the command runs at 80 columns and
its output must contain the shown lines in order (`...` stands for lines left out).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from doctor_helpers import REPO
from typer.testing import CliRunner

from tbx_doctor.cli import app

README = REPO / "README.md"
INCIDENT = REPO / "fixtures" / "incident"
PROFILE_LEARN = "profile learn logs/*3962717* logs/*3968* logs/*39707249* > good.toml"
EXPECTED = {
    "check logs/train_tbx11k_39581627.out": 1,
    "check logs/*.out.gz --format markdown": 1,  # 39543743's AP collapsed
    "check outputs/tbx11k_run_39627174": 0,
    "check job.out --expect pretrained --profile my.toml --strict": 1,
    "codes": 0,
    "hook --log logs/train_tbx11k_39581627.out": 0,
    "--version": 0,
    "inspect-ckpt outputs/run/checkpoint.pth": 0,
    "inspect-ckpt outputs/run/checkpoint.pth --epochs 50 --batch-size 1 --grad-accum 2 "
    "--world-size 1 --num-classes 4 --format json": 1,
    "history logs/ outputs/": 1,
    "history 'logs/train_*' --format csv": 1,
    "history logs/ --plot chain.png": 1,
    "watch logs/train_123.out --time-limit 4:00:00": 0,
    "check logs/train_tbx11k_39543743.out.gz": 1,
    "check job.out --reference outputs/tbx11k_run_39627174": 1,
    PROFILE_LEARN: 0,
    "history run_a/ --compare run_b/ --reference good.toml --plot chains.png": 1,
    "codes --explain": 0,
    # screenshots
    "check logs/*.out.gz logs/train_tbx11k_39581627.out": 1,
    "check logs/train_tbx11k_39687560.out.gz": 0,
}
REGENERATE = (
    "regenerate the README screenshot: in a folder holding the real logs/ and outputs/ (and "
    "the incident's train_tbx11k_39581627.out/.err in logs/), run `COLUMNS=80 {command}`"
)


def _blocks(language: str) -> list[list[str]]:
    """The lines of each ```language block of the README."""
    blocks, current = [], None
    for line in README.read_text(encoding="utf-8").splitlines():
        if current is None and line.strip() == f"```{language}":
            current = []
        elif current is not None and line.strip() == "```":
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def bash_examples() -> list[str]:
    """`tbx-doctor` commands of the bash blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in _blocks("bash"):
        text = "\n".join(block).replace("\\\n", " ")
        for line in text.splitlines():
            if line.startswith("tbx-doctor "):
                command = re.split(r"\s+#\s", line, maxsplit=1)[0]
                commands.append(" ".join(command.split()).removeprefix("tbx-doctor "))
    return commands


def screenshots() -> list[tuple[str, list[str]]]:
    """(command, shown lines) of each text block that starts with `$ tbx-doctor ...`."""
    found = []
    for block in _blocks("text"):
        if block and block[0].startswith("$ tbx-doctor "):
            found.append((block[0].removeprefix("$ tbx-doctor "), block[1:]))
    return found


def _load_factory():
    spec = importlib.util.spec_from_file_location(
        "ckpt_factory", REPO / "tests" / "doctor_ckpt" / "factory.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def project(real_logs_root, tmp_path_factory) -> Path:
    """The folder the README's examples assume."""
    return lay_out_project(tmp_path_factory.mktemp("readme"), real_logs_root)


def lay_out_project(root: Path, real_logs_root: Path) -> Path:
    """Fill `root` with what the README's examples assume (see the module docstring)."""
    (root / "logs").mkdir()
    (root / "outputs" / "run").mkdir(parents=True)
    for log in (real_logs_root / "logs").iterdir():
        (root / "logs" / log.name).symlink_to(log)
    for run in (real_logs_root / "outputs").iterdir():
        (root / "outputs" / run.name).symlink_to(run)
    for name in ("train_tbx11k_39581627.out", "train_tbx11k_39581627.err"):
        shutil.copy(INCIDENT / name, root / "logs" / name)
    shutil.copy(INCIDENT / "train_tbx11k_39543743.out", root / "job.out")
    _chain_folder(root / "run_a", real_logs_root, ("39430799", "39487851", "39543743"))
    _chain_folder(root / "run_b", real_logs_root, ("39627174", "39685032", "39687560", "39707249"))
    # The profile the history example compares with, made as the README's own example makes it.
    learn = f"{sys.executable} -m tbx_doctor {PROFILE_LEARN}"
    subprocess.run(["bash", "-c", learn], cwd=root, env={**os.environ, "PYTHONPATH": str(REPO)})
    shutil.copy(REPO / "fixtures" / "profiles" / "incident.toml", root / "my.toml")
    _load_factory().tbx_checkpoint(root / "outputs" / "run" / "checkpoint.pth", 49, 50)
    (root / "logs" / "train_123.out").write_text(
        "Job ID: 123\nStart Time: Mon Nov 17 10:00:00 MST 2025\nTraining from scratch\n"
        "Start training\n"
        "Epoch: [0]  [0/2]  eta: 0:00:10  lr: 0.000100  class_error: 100.00  loss: 2.1 (2.1)\n"
        "Epoch: [0]  [1/2]  eta: 0:00:10  lr: 0.000100  class_error: 100.00  loss: 2.1 (2.1)\n"
        "Epoch: [0] Total time: 0:20:00 (0.1300 s / it)\nTraining time 0:20:00\n"
        "End Time: Mon Nov 17 10:21:00 MST 2025\n"
    )
    return root


def _chain_folder(folder: Path, real_logs_root: Path, jobs: tuple[str, ...]) -> None:
    """`folder/logs` and `folder/outputs` holding only the given jobs' files (one chain)."""
    (folder / "logs").mkdir(parents=True)
    (folder / "outputs").mkdir()
    for log in (real_logs_root / "logs").iterdir():
        if any(job in log.name for job in jobs):
            (folder / "logs" / log.name).symlink_to(log)
    for run in (real_logs_root / "outputs").iterdir():
        if any(run.name.endswith(job) for job in jobs):
            (folder / "outputs" / run.name).symlink_to(run)


@pytest.fixture(scope="module")
def real_logs_root() -> Path:
    from doctor_helpers import REAL_LOGS

    if REAL_LOGS is None:
        pytest.skip("../shared/real-logs is absent: the README's examples run on the real logs")
    return REAL_LOGS


def _run(project: Path, command: str, monkeypatch) -> tuple[int, str]:
    """The command's words as bash makes them (quotes, globs), run in-process at 80 columns;
    `> FILE` at the end writes the standard output to FILE, as the shell would."""
    command, _, target = command.partition(" > ")
    words = subprocess.run(
        ["bash", "-c", 'printf "%s\\0" ' + command],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")[:-1]
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, words, env={"COLUMNS": "80"})
    if target:
        (project / target.strip()).write_text(result.stdout)
        return result.exit_code, result.stderr
    return result.exit_code, result.stdout + result.stderr


def test_every_readme_example_is_listed_here():
    found = bash_examples() + [command for command, _ in screenshots()]
    assert set(found) == set(EXPECTED), (
        "README examples changed: add new ones to EXPECTED (with their exit code) and drop "
        f"removed ones; README only: {sorted(set(found) - set(EXPECTED))}, EXPECTED only: "
        f"{sorted(set(EXPECTED) - set(found))}"
    )


@pytest.mark.real_logs
@pytest.mark.parametrize("command", sorted(EXPECTED))
def test_readme_example_runs_as_written(project, command, monkeypatch):
    code, output = _run(project, command, monkeypatch)
    assert code == EXPECTED[command], output[-2000:]
    assert "Traceback" not in output


def _contains_in_order(shown: list[str], output: list[str]) -> str | None:
    """None when `shown` (with `...` gaps) appears in `output` in order; else the first line
    that does not."""
    at, gap = 0, True
    for line in shown:
        if line == "...":
            gap = True
            continue
        while at < len(output) and output[at] != line and gap:
            at += 1
        if at >= len(output) or output[at] != line:
            return line
        at, gap = at + 1, False
    return None


@pytest.mark.real_logs
@pytest.mark.parametrize(("command", "shown"), screenshots(), ids=lambda v: str(v)[:40])
def test_readme_screenshots_are_real_output_at_80_columns(project, command, shown, monkeypatch):
    assert max(len(line) for line in shown) <= 80
    _, output = _run(project, command, monkeypatch)
    lines = [line.rstrip() for line in output.splitlines()]
    missing = _contains_in_order([line.rstrip() for line in shown], lines)
    assert missing is None, f"{missing!r} is not in the output: " + REGENERATE.format(
        command=f"tbx-doctor {command}"
    )


def regenerate_screenshots() -> None:
    """Re-run each README screenshot at 80 columns and write its output back into the README,
    keeping as many lines as the block shows now (a trailing `...` marks the cut)."""
    import tempfile

    from doctor_helpers import REAL_LOGS

    text = README.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        root = lay_out_project(Path(tmp), REAL_LOGS)
        for command, shown in screenshots():
            keep = shown.index("...") if "..." in shown else len(shown)
            _, output = _run(root, command, patch)
            lines = [line.rstrip() for line in output.splitlines()]
            fresh = lines[:keep] + (["..."] if len(lines) > keep else [])
            old = "\n".join([f"$ tbx-doctor {command}", *shown])
            text = text.replace(old, "\n".join([f"$ tbx-doctor {command}", *fresh]), 1)
    README.write_text(text, encoding="utf-8")


if __name__ == "__main__":  # python tests/doctor/test_readme_examples.py: refresh the screenshots
    regenerate_screenshots()
