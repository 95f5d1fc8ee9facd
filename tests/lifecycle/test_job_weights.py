"""The job script's weights choice (scripts/tbx_job.sh, sourced in bash; no SLURM needed)."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _own_run_source(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    script = (
        f"source {ROOT / 'scripts' / 'tbx_job.sh'}; TBX_ROOT={tmp_path}; RUN_DIR={tmp_path}/run; "
        'tbx_own_run_source; rc=$?; echo "ARGS: ${RESUME_ARGS[*]}"; exit $rc'
    )
    return subprocess.run(
        ["bash", "-c", script], env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_a_named_missing_weights_file_stops_the_job(tmp_path):
    for name in ("TBX_PRETRAINED", "TBX_BACKBONE_WEIGHTS"):
        result = _own_run_source(tmp_path, **{name: str(tmp_path / "missing.pth")})
        assert result.returncode == 2, result.stdout
        assert f"Stopping: {name}={tmp_path / 'missing.pth'} does not exist" in result.stdout


def test_backbone_weights_reach_the_run_options(tmp_path):
    weights = tmp_path / "resnet50.pth"
    weights.touch()
    result = _own_run_source(tmp_path, TBX_BACKBONE_WEIGHTS=str(weights))
    assert result.returncode == 0, result.stdout
    assert f"ARGS: --resume auto --backbone-weights {weights}" in result.stdout
    bare = _own_run_source(tmp_path)
    assert bare.returncode == 0 and "refused by the plan" in bare.stdout
