"""Read a file as whole-line binary chunks, plain or gzipped, in constant memory.

Why chunks and not lines: a 1 GB log has ~250k lines of ~4 KB; iterating Python line objects
is slower than scanning big buffers with `bytes.find`, and the scanner only decodes the few
lines it keeps as evidence.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tbx_doctor.errors import InputNotFound, UnreadableInput

CHUNK_BYTES = 8 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
MAX_LINE_BYTES = 16 * 1024 * 1024  # a longer line (binary junk) is cut: memory stays bounded


@dataclass
class ReadStatus:
    """What reading a file revealed about the file itself (not its content)."""

    path: Path
    compressed: bool = False
    truncated: bool = False  # a .gz stream that ends early or is corrupt part way through
    problem: str = ""  # the decoder's message when truncated
    bytes_read: int = 0  # uncompressed bytes delivered


def _open(path: Path) -> tuple[object, bool]:
    if not path.exists():
        raise InputNotFound(f"{path}: no such file")
    if path.is_dir():
        raise UnreadableInput(f"{path}: is a directory, expected a log file")
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise UnreadableInput(f"{path}: cannot open ({exc.strerror})") from exc
    head = raw.read(2)
    raw.seek(0)
    if head != GZIP_MAGIC and path.name.endswith(".gz") and head:
        raw.close()
        raise UnreadableInput(
            f"{path}: named .gz but not gzip-compressed; rename it without .gz to read it as text"
        )
    return raw, head == GZIP_MAGIC


SNIFF_BYTES = 8192
# Control bytes that text logs never hold (tab, newlines, form feed and ESC of colours excepted;
# NUL too: a job killed mid-write on a network file system leaves runs of NULs in a real log).
_CONTROL = bytes(b for b in range(1, 32) if b not in (9, 10, 11, 12, 13, 27))
SNIFF_MIN = 1024  # shorter files are read as text: too few bytes to call them binary
_DROP_CONTROL = bytes.maketrans(b"", b"")


def looks_binary(head: bytes) -> bool:
    """True when the start of a file is binary data, not a log: many control bytes.

    Junk inside a log (a crash's NUL padding, a stray binary blob) is tolerated; only a file
    that starts as binary is refused.
    """
    sample = head[:SNIFF_BYTES]
    control = len(sample) - len(sample.translate(_DROP_CONTROL, _CONTROL))
    return len(sample) >= SNIFF_MIN and control * 20 > len(sample)


def _gunzip_blocks(raw, size: int, status: ReadStatus) -> Iterator[bytes]:
    """Decompress gzip members incrementally so a truncated file yields everything before the cut.

    (gzip.GzipFile.read drops the partial block when it hits a premature end.)
    """
    inflater, fed = zlib.decompressobj(wbits=47), False
    while data := raw.read(size // 8):
        while data:
            try:
                # Bounded output: a highly compressible log (one 5 MB line of "x") would
                # otherwise inflate to gigabytes in one call.
                out = inflater.decompress(data, size)
            except zlib.error as exc:
                status.truncated, status.problem = True, f"corrupt gzip data ({exc})"
                return
            fed = True
            if out:
                yield out
            data = inflater.unconsumed_tail
            if inflater.eof:  # a second gzip member may follow (concatenated .gz files)
                data = inflater.unused_data
                inflater, fed = zlib.decompressobj(wbits=47), False
    if fed:
        if tail := inflater.flush():
            yield tail
        status.truncated = True
        status.problem = "gzip stream ends before its end-of-stream marker"


def _plain_blocks(raw, size: int) -> Iterator[bytes]:
    while block := raw.read(size):
        yield block


def iter_chunks(
    path: Path, status: ReadStatus, size: int = CHUNK_BYTES
) -> Iterator[tuple[bytes, int, int]]:
    """Yield (buffer, start, end): buffer[start:end] is a run of whole lines (the final run may
    lack its newline). Big blocks are never copied: only a line split across two reads is joined.

    A truncated or corrupt gzip stream stops the iteration after the last good bytes and sets
    `status.truncated`; it never raises for that (a job killed mid-write leaves such files).
    """
    raw, status.compressed = _open(path)
    carry = b""
    try:
        blocks = (
            _gunzip_blocks(raw, size, status) if status.compressed else _plain_blocks(raw, size)
        )
        for block in blocks:
            if not status.bytes_read and looks_binary(block):
                raise UnreadableInput(
                    f"{path}: binary data, not a text log; pass the job's .out/.err log"
                )
            status.bytes_read += len(block)
            start = 0
            if carry:
                first = block.find(b"\n")
                if first < 0:
                    if len(carry) < MAX_LINE_BYTES:  # bytes past the cap are dropped, not kept
                        carry = (carry + block)[:MAX_LINE_BYTES]
                    continue
                joined = carry + block[: first + 1]
                yield joined, 0, len(joined)
                start, carry = first + 1, b""
            last = block.rfind(b"\n", start)
            if last >= start:
                yield block, start, last + 1
            carry = (block[last + 1 :] if last >= start else block[start:])[:MAX_LINE_BYTES]
    except OSError as exc:
        raise UnreadableInput(f"{path}: read failed ({exc})") from exc
    finally:
        raw.close()
    if carry:
        yield carry, 0, len(carry)
