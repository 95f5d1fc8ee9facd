"""The `slurm_cluster` fixture: one private SLURM cluster per test session.

It installs slurm-wlm and munge when missing (root + apt), starts the cluster under a temporary
directory and stops it, by PID, at the end of the session. Where it cannot be provided the tests
that use it skip with the reason (not root, no apt, install failed).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import LocalCluster
from .multinode import TwoNodeCluster
from .netns import NetnsUnavailable
from .packages import SlurmUnavailable, ensure_programs


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too so this directory works when copied without the project's pyproject.
    config.addinivalue_line("markers", "slurm: needs the local SLURM cluster of tests/slurm")
    config.addinivalue_line(
        "markers", "multinode: needs the two-node cluster (root, network namespaces); ~4 min"
    )


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[LocalCluster]:
    """A running single-node cluster; `.submit`, `.wait_final`, `.env` (SLURM_CONF)."""
    try:
        programs = ensure_programs()
    except SlurmUnavailable as exc:
        pytest.skip(f"no local SLURM cluster: {exc}")
    # Short path: slurmd's spool names and munge's socket path have length limits.
    root = Path(tempfile.mkdtemp(prefix="tbx-slurm-"))
    cluster = LocalCluster(root, programs)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def slurm_two_nodes() -> Iterator[TwoNodeCluster]:
    """A running two-node cluster (nodes tbxn1, tbxn2 in network namespaces on this machine)."""
    try:
        programs = ensure_programs()
    except SlurmUnavailable as exc:
        pytest.skip(f"no local SLURM cluster: {exc}")
    root = Path(tempfile.mkdtemp(prefix="tbx-slurm2-"))
    cluster = TwoNodeCluster(root, programs)
    try:
        try:
            cluster.start()
        except NetnsUnavailable as exc:
            pytest.skip(f"no two-node cluster: {exc}")
        yield cluster
    finally:
        cluster.stop()
