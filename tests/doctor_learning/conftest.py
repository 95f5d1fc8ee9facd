"""Fixtures of the learning-quality tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from learning_helpers import real_root


@pytest.fixture
def real_logs() -> Path:
    root = real_root()
    if root is None:
        pytest.skip("../shared/real-logs/dino_tbx11k is absent: the real-log tests need it")
    return root
