"""Errors raised by the data pipeline; the CLI maps them to exit code 2 with their message."""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """The data set cannot be used as given; the message says what is wrong and how to fix it."""


class MissingImagesError(DataError):
    """Image files named by an annotation file are absent under the image root.

    `missing` holds every absent path; the message lists the first few and the count.
    """

    def __init__(self, missing: list[Path], total: int, image_root: Path, ann_file: Path):
        self.missing = missing
        self.total = total
        shown = "\n  ".join(str(p) for p in missing[:5])
        more = f"\n  ... and {len(missing) - 5} more" if len(missing) > 5 else ""
        super().__init__(
            f"{len(missing)} of {total} images listed in {ann_file} are missing under "
            f"{image_root}:\n  {shown}{more}\nFix: point --image-root (or --data-root) at the "
            "folder the json `file_name` entries are relative to (TBX11K: DATA_ROOT/imgs)."
        )
