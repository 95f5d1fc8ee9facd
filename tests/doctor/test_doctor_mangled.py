"""Mangled logs never crash the doctor: exit 0/1 with a JSON report (2 only when unreadable)."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import pytest
from doctor_helpers import REPO
from doctor_logtext import healthy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tbx_doctor.cli import app

BASE = ("\n".join(healthy()) + "\n").encode()
INCIDENT = (REPO / "fixtures" / "incident" / "train_tbx11k_39581627.out").read_bytes()
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _check(path: Path) -> dict:
    stamp = time.time() - 3600
    os.utime(path, (stamp, stamp))
    result = CliRunner().invoke(app, ["check", str(path), "--format", "json"])
    assert result.exit_code in (0, 1), (result.exit_code, result.output[-500:], result.exception)
    return json.loads(result.stdout)


def _mangle(data: bytes, cut: int, noise: bytes, at: int, crlf: bool, ansi: bool) -> bytes:
    data = data[: max(1, cut % (len(data) + 1))]
    at %= len(data) + 1
    data = data[:at] + noise + data[at:]
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    if ansi:
        data = data.replace(b"Epoch:", b"\x1b[32mEpoch:\x1b[0m").replace(b"Start", b"\x1b[1mStart")
    return data


@SETTINGS
@given(
    base=st.sampled_from([BASE, INCIDENT]),
    cut=st.integers(0, 10**6),
    noise=st.binary(max_size=64),
    at=st.integers(0, 10**6),
    crlf=st.booleans(),
    ansi=st.booleans(),
)
def test_mangled_plain_logs(tmp_path, base, cut, noise, at, crlf, ansi):
    path = tmp_path / "train_1.out"
    path.write_bytes(_mangle(base, cut, noise, at, crlf, ansi))
    report = _check(path)
    assert report["schema"] == "tbx-doctor.check/1"


@SETTINGS
@given(cut=st.integers(10, 4000), nuls=st.integers(0, 50))
def test_truncated_gzip(tmp_path, cut, nuls):
    path = tmp_path / "train_2.out.gz"
    path.write_bytes(gzip.compress(BASE + b"\x00" * nuls)[:cut])
    report = _check(path)
    if cut < len(gzip.compress(BASE + b"\x00" * nuls)):
        assert "incomplete-log" in {f["code"] for f in report["findings"]}


def test_five_megabyte_line_and_random_binary(tmp_path):
    path = tmp_path / "train_3.out"
    path.write_bytes(
        BASE[:2000] + b"x" * (5 * 1024 * 1024) + b" loss: nan\n" + os.urandom(4096) + BASE[2000:]
    )
    report = _check(path)
    assert report["verdict"] in ("healthy", "warning", "failed")


def test_corrupt_gzip_and_empty_file(tmp_path):
    fake = tmp_path / "train_4.out.gz"
    fake.write_bytes(b"\x1f\x8bnot really gzip data at all")
    assert "incomplete-log" in {f["code"] for f in _check(fake)["findings"]}
    empty = tmp_path / "train_5.out"
    empty.write_bytes(b"")
    report = _check(empty)
    assert report["verdict"] == "warning"
    assert [f["title"] for f in report["findings"]] == ["The log is empty"]


def test_directory_named_like_a_log_exits_2(tmp_path):
    (tmp_path / "train_6.out").mkdir()
    result = CliRunner().invoke(app, ["check", str(tmp_path / "train_6.out")])
    assert result.exit_code == 2 and result.output.startswith("tbx-doctor: error:")


def test_unreadable_file_exits_2(tmp_path):
    path = tmp_path / "train_7.out"
    path.write_bytes(BASE)
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root: file permissions do not stop reading")
        result = CliRunner().invoke(app, ["check", str(path)])
        assert result.exit_code == 2 and "cannot open" in result.output
    finally:
        path.chmod(0o644)
