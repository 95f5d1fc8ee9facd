"""`tbx-doctor check` settles the incident's root cause from the source checkpoint alone."""

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from tbx_doctor.cli import app

INCIDENT = Path(__file__).resolve().parents[2] / "fixtures" / "incident"


def _lone_incident_log(tmp_path: Path) -> Path:
    """The incident log in a copied project layout, without the source job's log."""
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(INCIDENT / "train_tbx11k_39581627.out", logs)
    return logs / "train_tbx11k_39581627.out"


def _check(log: Path) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["check", str(log), "--format", "json"])
    return result.exit_code, json.loads(result.output)


def test_root_cause_from_the_checkpoint(tmp_path, finished_official):
    log = _lone_incident_log(tmp_path)
    run_dir = tmp_path / "outputs" / "tbx11k_run_39543743"
    run_dir.mkdir(parents=True)
    shutil.copy(finished_official, run_dir / "checkpoint.pth")
    rc, report = _check(log)
    assert rc == 1
    assert report["run"]["source_epoch"] == 49
    first = report["findings"][0]
    assert first["code"] == "zero-epochs"
    assert "start_epoch = 49 + 1 = 50 = epochs" in first["explanation"]
    assert any(e["file"].endswith("checkpoint.pth") for e in first["evidence"])


def test_unreadable_checkpoint_is_named_as_missing_proof(tmp_path):
    log = _lone_incident_log(tmp_path)
    run_dir = tmp_path / "outputs" / "tbx11k_run_39543743"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint.pth").write_bytes(b"PK\x03\x04 truncated")
    rc, report = _check(log)
    assert rc == 1 and report["run"]["source_epoch"] is None
    text = report["findings"][0]["explanation"]
    assert "exists but cannot be read" in text
