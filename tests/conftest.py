"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op torch thread per test.

    The CI box has 2 cores shared by many jobs; with more threads than free cores torch's
    intra-op threads mostly wait on each other (a tiny forward went from 0.2 s to 1.4-5 s, a
    training step from ~1 s to ~10 s with 2 threads).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
