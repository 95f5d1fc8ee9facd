"""Files that are not readable checkpoints get one-line reasons; legacy torch files are read."""

import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from tbx_doctor.checkpoint import summarize_checkpoint
from tbx_doctor.errors import InputNotFound, UnreadableInput


def _small(path: Path) -> Path:
    torch.save({"model": {"label_enc.weight": torch.zeros(5, 2)}, "epoch": 3}, path)
    return path


def _reason(path: Path) -> str:
    with pytest.raises(UnreadableInput) as caught:
        summarize_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputNotFound, match="no such file"):
        summarize_checkpoint(tmp_path / "nope.pth")


def test_empty_file_and_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    assert "empty file (0 bytes)" in _reason(empty)
    assert "is a directory" in _reason(tmp_path)


def test_truncated_zip(tmp_path: Path) -> None:
    data = _small(tmp_path / "full.pth").read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt zip archive" in _reason(cut)


def test_zip_missing_a_storage(tmp_path: Path) -> None:
    full = _small(tmp_path / "full.pth")
    partial = tmp_path / "partial.pth"
    with zipfile.ZipFile(full) as source, zipfile.ZipFile(partial, "w") as target:
        for info in source.infolist():
            if "/data/" not in info.filename:
                target.writestr(info, source.read(info))
    assert "storage full/data/0 is missing" in _reason(partial)


def test_not_a_checkpoint(tmp_path: Path) -> None:
    noise = tmp_path / "noise.pth"
    noise.write_bytes(b"hello, I am text\n")
    assert "not a checkpoint" in _reason(noise)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"epoch": 1}, protocol=2))
    assert "no torch magic number" in _reason(plain)
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "hi")
    assert "without data.pkl" in _reason(other_zip)
    listing = tmp_path / "list.pth"
    torch.save([1, 2], listing)
    assert "top level is list" in _reason(listing)


def test_legacy_non_zip_checkpoint_is_read(tmp_path: Path) -> None:
    path = tmp_path / "legacy.pth"
    state = {"class_embed.0.weight": torch.zeros(4, 3), "label_enc.weight": torch.zeros(5, 3)}
    torch.save({"model": state, "epoch": 7}, path, _use_new_zipfile_serialization=False)
    summary = summarize_checkpoint(path)
    assert (summary.container, summary.epoch, summary.num_classes) == ("legacy-pickle", 7, 4)
    assert (summary.dn_labelbook_size, summary.parameter_count) == (4, 27)


def test_truncated_legacy_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "legacy.pth"
    torch.save({"epoch": 7, "x": torch.zeros(3)}, path, _use_new_zipfile_serialization=False)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[:150])
    assert "truncated or corrupt legacy" in _reason(cut)


def test_oversized_pickle_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tbx_doctor.checkpoint import archive

    path = _small(tmp_path / "big.pth")
    monkeypatch.setattr(archive, "MAX_PICKLE_BYTES", 16)
    assert "data.pkl declares" in _reason(path)
