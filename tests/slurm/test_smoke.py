"""The local cluster itself: a job completes, a failing job is FAILED, fake GPUs are handed out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .cluster import LocalCluster, parse_job_line
from .netns import TwoNodeNet

pytestmark = pytest.mark.slurm


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/bash\n" + body + "\n")
    return path


def test_parse_job_line_glues_values_with_spaces() -> None:
    line = "JobId=7 JobName=a b JobState=FAILED ExitCode=3:0 TRES=cpu=1,mem=3G"
    info = parse_job_line(line)
    assert info["JobName"] == "a b"
    assert info["ExitCode"] == "3:0"
    assert info["TRES"] == "cpu=1,mem=3G"


def test_jobs_end_with_slurms_states(slurm_cluster: LocalCluster, tmp_path: Path) -> None:
    # Submitted together and waited for afterwards: the three run concurrently.
    out = str(tmp_path / "%x-%j.out")
    ok = slurm_cluster.submit(
        _script(tmp_path / "ok.sh", "echo hello from $SLURM_JOB_ID"), ["-J", "ok", "-o", out]
    )
    bad = slurm_cluster.submit(
        _script(tmp_path / "bad.sh", "echo failing; exit 3"), ["-J", "bad", "-o", out]
    )
    gpu = slurm_cluster.submit(
        _script(tmp_path / "gpu.sh", 'echo "CVD=$CUDA_VISIBLE_DEVICES"'),
        ["-J", "gpu", "-o", out, "--gres=gpu:1"],
    )

    info = slurm_cluster.wait_final(ok, timeout=60)
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0")
    assert Path(info["StdOut"]).read_text() == f"hello from {ok}\n"

    info = slurm_cluster.wait_final(bad, timeout=60)
    assert (info["JobState"], info["Reason"], info["ExitCode"]) == (
        "FAILED",
        "NonZeroExitCode",
        "3:0",
    )

    info = slurm_cluster.wait_final(gpu, timeout=60)
    assert info["JobState"] == "COMPLETED"
    assert re.fullmatch(r"CVD=[0-7]", Path(info["StdOut"]).read_text().strip())


def test_two_node_net_takes_addresses_only_from_the_test_range(tmp_path: Path) -> None:
    net = TwoNodeNet("t", ("a", "b"), tmp_path)
    assert [n.address for n in net.nodes] == ["198.18.0.1", "198.18.0.2"]
    with pytest.raises(ValueError, match=r"outside 198\.18\.0\.0/15"):
        TwoNodeNet("t", ("a", "b"), tmp_path, subnet="10.1.2.0/24")
