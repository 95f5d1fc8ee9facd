"""Fixtures of the doctor's tests (helpers live in doctor_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from doctor_helpers import REAL_LOGS


@pytest.fixture
def real_logs() -> Path:
    if REAL_LOGS is None:
        pytest.skip(
            "../shared/real-logs (relative to the repo root) is absent: real-log tests need it"
        )
    return REAL_LOGS
