"""Open a torch.save file without torch: the zip layout (torch >= 1.6) or the legacy pickle stream.

Zip layout: `<prefix>/data.pkl` (the object tree), `<prefix>/data/<key>` (one entry per storage,
stored uncompressed), `<prefix>/byteorder`, `<prefix>/version`. Only data.pkl is read in full; a
storage is touched only to read a one-element tensor (an optimizer's `step`), a few bytes.
Legacy layout (torch < 1.6): pickles of a magic number, protocol version and sys info, then the
object tree, then storage keys and raw bytes (never read here).
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from tbx_doctor.checkpoint.pickle_reader import RestrictedUnpickler, StorageRef, TensorInfo
from tbx_doctor.errors import InputNotFound, UnreadableInput

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_ZIP_MAGIC = b"PK\x03\x04"
# A DINO checkpoint's data.pkl is ~150 kB; a far larger one (e.g. a zip bomb) is refused unread.
MAX_PICKLE_BYTES = 256 * 1024 * 1024
_STRUCT_CODES = {"float64": "d", "float32": "f", "float16": "e", "int64": "q", "int32": "i"}


@dataclass
class RawCheckpoint:
    """The unpickled object tree (tensors as TensorInfo) and how the file was laid out."""

    path: Path
    container: str  # "zip" or "legacy-pickle"
    tree: object
    unsafe_globals: list[str] = field(default_factory=list)
    zip_prefix: str = ""
    little_endian: bool = True
    stored_offsets: dict[str, int] = field(default_factory=dict)  # entry -> local header offset

    def read_scalars(self, tensors: list[TensorInfo]) -> list[float | int | None]:
        """Values of one-element tensors (e.g. AdamW's `step`); None where it cannot be read.

        Reads a few bytes per tensor straight from the (uncompressed) zip entries, without
        parsing the central directory again.
        """
        values: list[float | int | None] = [None] * len(tensors)
        if self.container != "zip":
            return values
        with self.path.open("rb") as handle:
            for index, tensor in enumerate(tensors):
                code = _STRUCT_CODES.get(tensor.dtype)
                header = self.stored_offsets.get(f"{self.zip_prefix}data/{tensor.storage.key}")
                if code is None or tensor.numel != 1 or header is None:
                    continue
                raw = _read_stored(handle, header, tensor.offset * tensor.storage.itemsize, 8)
                size = struct.calcsize(code)
                if len(raw) >= size:
                    values[index] = struct.unpack(
                        ("<" if self.little_endian else ">") + code, raw[:size]
                    )[0]
        return values


def _read_stored(handle: BinaryIO, header_offset: int, start: int, count: int) -> bytes:
    """`count` bytes at `start` of a stored zip entry whose local header is at header_offset."""
    handle.seek(header_offset)
    header = handle.read(30)
    if len(header) < 30 or header[:4] != _ZIP_MAGIC:
        return b""
    name_length, extra_length = struct.unpack("<HH", header[26:30])  # extra: torch's alignment
    handle.seek(header_offset + 30 + name_length + extra_length + start)
    return handle.read(count)


def iter_tensors(obj: object) -> Iterator[TensorInfo]:
    """Every TensorInfo in a tree of dicts, lists and tuples (depth first)."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, TensorInfo):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def read_checkpoint(path: Path) -> RawCheckpoint:
    """Unpickle `path` safely; raise InputNotFound / UnreadableInput with a one-line reason."""
    if not path.exists():
        raise InputNotFound(f"{path}: no such file")
    if path.is_dir():
        raise UnreadableInput(f"{path}: is a directory, not a checkpoint file")
    size = path.stat().st_size
    if size == 0:
        raise UnreadableInput(f"{path}: empty file (0 bytes); the save was interrupted or failed")
    with path.open("rb") as handle:
        head = handle.read(4)
    if head == _ZIP_MAGIC:
        return _read_zip(path)
    if head[:1] == b"\x80":
        return _read_legacy(path)
    raise UnreadableInput(f"{path}: not a checkpoint (neither a torch.save zip nor a pickle)")


# What a corrupt pickle can raise while only inert stand-ins run (nothing here runs user code).
_CORRUPT = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    MemoryError,
    RecursionError,
)


def _unpickle(data: io.BufferedIOBase, path: Path, what: str) -> tuple[object, list[str]]:
    unpickler = RestrictedUnpickler(data)
    try:
        tree = unpickler.load()
    except _CORRUPT as error:
        if unpickler.unsafe_globals:  # refused names explain the failure better than the error
            return None, unpickler.unsafe_globals
        raise UnreadableInput(f"{path}: truncated or corrupt {what} ({error})") from error
    return tree, unpickler.unsafe_globals


def _read_zip(path: Path) -> RawCheckpoint:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise UnreadableInput(
            f"{path}: truncated or corrupt zip archive ({error}); the save or copy did not finish"
        ) from error
    with archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if not pickles:
            raise UnreadableInput(f"{path}: zip archive without data.pkl, not a torch.save file")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = archive.read(prefix + "byteorder") if prefix + "byteorder" in names else b""
        declared = archive.getinfo(pickles[0]).file_size
        if declared > MAX_PICKLE_BYTES:
            raise UnreadableInput(
                f"{path}: data.pkl declares {declared:,} bytes (limit {MAX_PICKLE_BYTES:,}); "
                "not read"
            )
        try:
            payload = archive.read(pickles[0])
        except (zipfile.BadZipFile, OSError) as error:
            raise UnreadableInput(f"{path}: corrupt data.pkl entry ({error})") from error
        tree, unsafe = _unpickle(io.BytesIO(payload), path, "data.pkl")
        infos = archive.infolist()
        stored = {
            i.filename: i.header_offset for i in infos if i.compress_type == zipfile.ZIP_STORED
        }
        raw = RawCheckpoint(path, "zip", tree, unsafe, prefix, byteorder != b"big", stored)
        if not unsafe:
            _check_storages(raw, {info.filename: info.file_size for info in infos})
    return raw


def _check_storages(raw: RawCheckpoint, sizes: dict[str, int]) -> None:
    """Every storage the pickle names must exist with enough bytes (no data is read)."""
    seen: set[str] = set()
    for tensor in iter_tensors(raw.tree):
        storage: StorageRef = tensor.storage
        if storage.key in seen:
            continue
        seen.add(storage.key)
        entry = f"{raw.zip_prefix}data/{storage.key}"
        if entry not in sizes:
            raise UnreadableInput(f"{raw.path}: storage {entry} is missing from the archive")
        if sizes[entry] < storage.numel * storage.itemsize:
            raise UnreadableInput(
                f"{raw.path}: storage {entry} holds {sizes[entry]} bytes, "
                f"expected {storage.numel * storage.itemsize}"
            )


def _read_legacy(path: Path) -> RawCheckpoint:
    with path.open("rb") as handle:
        magic, unsafe = _unpickle(handle, path, "pickle")
        if unsafe:
            return RawCheckpoint(path, "legacy-pickle", None, unsafe)
        if magic != _LEGACY_MAGIC:
            raise UnreadableInput(
                f"{path}: a pickle, but not a torch.save checkpoint (no torch magic number)"
            )
        for what in ("protocol version", "sys info", "object tree"):
            value, unsafe = _unpickle(handle, path, f"legacy {what} pickle")
            if unsafe:
                return RawCheckpoint(path, "legacy-pickle", None, unsafe)
        return RawCheckpoint(path, "legacy-pickle", value)
