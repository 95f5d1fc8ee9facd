"""Malicious checkpoints: pickles hand-assembled from opcodes (see pickletools) in torch.save's zip
layout, each of which creates a marker file when loaded normally. The reader must name the global
and the file must never appear. Each payload is first run by torch.load(weights_only=False) to
prove it is live."""

from __future__ import annotations

import pickle
import struct
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tbx_doctor.checkpoint import summarize_checkpoint
from tbx_doctor.cli import app

MARK, TUPLE, TUPLE1, REDUCE, BUILD, OBJ = b"(", b"t", b"\x85", b"R", b"b", b"o"
EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE, SETITEM, SETITEMS, APPENDS = b"}", b"]", b")", b"s", b"u", b"e"
PROTO2, STOP, BINPERSID, NEWFALSE, NEWOBJ, STACK_GLOBAL = (
    b"\x80\x02",
    b".",
    b"Q",
    b"\x89",
    b"\x81",
    b"\x93",
)


def glob(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def integer(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def tensor(key: str, numel: int) -> bytes:
    """A float tensor exactly as torch.save pickles it: rebuild_tensor_v2 + persistent storage."""
    storage = MARK + text("storage") + glob("torch", "FloatStorage") + text(key) + text("cpu")
    storage += integer(numel) + TUPLE + BINPERSID
    shape = MARK + integer(numel) + TUPLE + MARK + integer(1) + TUPLE
    hooks = glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE
    args = MARK + storage + integer(0) + shape + NEWFALSE + hooks + TUPLE
    return glob("torch._utils", "_rebuild_tensor_v2") + args + REDUCE


def checkpoint_pickle(epoch_value: bytes) -> bytes:
    """{'model': {'w': tensor}, 'epoch': <epoch_value>}: the payload hides in a real layout."""
    model = EMPTY_DICT + MARK + text("w") + tensor("0", 2) + SETITEMS
    return (
        PROTO2
        + EMPTY_DICT
        + MARK
        + text("model")
        + model
        + text("epoch")
        + epoch_value
        + (SETITEMS + STOP)
    )


def write_torch_zip(path: Path, data_pkl: bytes) -> Path:
    """The zip layout torch.save writes: archive/data.pkl, data/<key>, byteorder, version."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", struct.pack("<2f", 1.0, 2.0))
        archive.writestr("archive/version", "3\n")
    return path


def _run(cmd: str) -> bytes:
    return glob("os", "system") + text(cmd) + TUPLE1 + REDUCE


# name -> (payload builder taking the marker path, the global the reader must name)
PAYLOADS: dict[str, tuple[Callable[[str], bytes], str]] = {
    "reduce-os-system": (lambda m: _run(f"touch {m}"), "os.system"),
    "reduce-posix-system": (
        lambda m: glob("posix", "system") + text(f"touch {m}") + TUPLE1 + REDUCE,
        "posix.system",
    ),
    "subprocess-popen": (
        lambda m: (
            glob("subprocess", "Popen")
            + EMPTY_LIST
            + MARK
            + text("touch")
            + text(m)
            + APPENDS
            + TUPLE1
            + REDUCE
        ),
        "subprocess.Popen",
    ),
    "builtins-eval": (
        lambda m: glob("builtins", "eval") + text(f"open({m!r}, 'w').close()") + TUPLE1 + REDUCE,
        "builtins.eval",
    ),
    "builtins-exec-stack-global": (
        lambda m: (
            text("builtins")
            + text("exec")
            + STACK_GLOBAL
            + text(f"import pathlib; pathlib.Path({m!r}).touch()")
            + TUPLE1
            + REDUCE
        ),
        "builtins.exec",
    ),
    "getattr-import": (
        lambda m: (
            glob("builtins", "getattr")
            + MARK
            + glob("builtins", "__import__")
            + MARK
            + text("os")
            + TUPLE
            + REDUCE
            + text("system")
            + TUPLE
            + REDUCE
            + MARK
            + text(f"touch {m}")
            + TUPLE
            + REDUCE
        ),
        "builtins.getattr",
    ),
    "inst-os-system": (lambda m: MARK + text(f"touch {m}") + b"ios\nsystem\n", "os.system"),
    "obj-os-system": (
        lambda m: MARK + glob("os", "system") + text(f"touch {m}") + OBJ,
        "os.system",
    ),
    "build-setstate": (
        lambda m: (
            glob("collections", "OrderedDict")
            + EMPTY_TUPLE
            + REDUCE
            + EMPTY_DICT
            + text("__setstate__")
            + glob("os", "system")
            + SETITEM
            + BUILD
            + text(f"touch {m}")
            + BUILD
        ),
        "os.system",
    ),
    "namespace-build-state": (
        lambda m: (
            glob("argparse", "Namespace")
            + EMPTY_TUPLE
            + NEWOBJ
            + EMPTY_DICT
            + text("epochs")
            + _run(f"touch {m}")
            + SETITEM
            + BUILD
        ),
        "os.system",
    ),
}


def _wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.02)
    return path.exists()


def test_hand_layout_is_a_real_torch_checkpoint(tmp_path: Path) -> None:
    """The assembled layout loads with torch (so the payload tests use a faithful container)."""
    path = write_torch_zip(tmp_path / "ok.pth", checkpoint_pickle(integer(3)))
    loaded = torch.load(path, weights_only=True)
    assert loaded["epoch"] == 3 and loaded["model"]["w"].tolist() == [1.0, 2.0]
    summary = summarize_checkpoint(path)
    assert (summary.unsafe_globals, summary.epoch, summary.parameter_count) == ((), 3, 2)


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_payload_is_refused_and_never_runs(tmp_path: Path, name: str) -> None:
    build, expected_global = PAYLOADS[name]
    marker = tmp_path / "pwned"
    path = write_torch_zip(tmp_path / "evil.pth", checkpoint_pickle(build(str(marker))))
    torch.load(path, weights_only=False)  # control: what an unsafe load would run
    assert _wait_for(marker, 5.0), f"payload {name} is not live"
    marker.unlink()

    summary = summarize_checkpoint(path)
    assert expected_global in summary.unsafe_globals
    assert summary.epoch is None and summary.model_keys == 0  # nothing else was read
    result = CliRunner().invoke(app, ["inspect-ckpt", str(path)])
    assert result.exit_code == 2
    assert expected_global in result.output and "UNSAFE" in result.output
    assert not _wait_for(marker, 0.3)


def test_legacy_stream_payload_is_refused(tmp_path: Path) -> None:
    """Legacy (non-zip) files are a sequence of pickles; the first one is checked too."""
    marker = tmp_path / "pwned"
    data = PROTO2 + _run(f"touch {marker}") + STOP
    pickle.loads(data)
    assert marker.exists()
    marker.unlink()
    path = tmp_path / "legacy_evil.pth"
    path.write_bytes(data)
    assert summarize_checkpoint(path).unsafe_globals == ("os.system",)
    assert not marker.exists()
