"""The start-up data report: what an annotation file holds and what was done to its boxes.

Nothing is dropped silently: boxes clipped to the image are counted as clipped (and kept),
zero-area boxes as degenerate (excluded from the targets), crowd boxes as crowd (excluded, as
DETR does); the report carries every count and the trainer prints it before training starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class DataReport:
    """Counts for one split. `boxes` and `boxes_per_class` count the boxes kept as targets."""

    split: str
    ann_file: str
    image_root: str
    images: int
    images_with_boxes: int
    boxes: int
    boxes_per_class: dict[str, int] = field(default_factory=dict)
    clipped: int = 0  # kept, with coordinates clipped to the image
    degenerate: int = 0  # zero or negative area after clipping: excluded from targets
    crowd: int = 0  # iscrowd=1: excluded from targets (kept out of training as DETR does)

    @property
    def images_without_boxes(self) -> int:
        return self.images - self.images_with_boxes

    @property
    def excluded(self) -> int:
        """Annotations present in the file but not used as targets."""
        return self.degenerate + self.crowd

    def to_dict(self) -> dict[str, object]:
        """Plain types for JSON (the checkpoint's dataset facts, machine-readable logs)."""
        data = asdict(self)
        data["images_without_boxes"] = self.images_without_boxes
        return data

    def render(self) -> list[str]:
        """Lines for people, e.g. `Data [train] 300 images: 195 with boxes, 105 without; ...`."""
        per_class = ", ".join(f"{name} {count}" for name, count in self.boxes_per_class.items())
        lines = [
            f"Data [{self.split}] {self.ann_file} (images under {self.image_root})",
            f"Data [{self.split}] {self.images} images: {self.images_with_boxes} with boxes, "
            f"{self.images_without_boxes} without; {self.boxes} boxes ({per_class})",
            f"Data [{self.split}] box checks: {self.clipped} clipped to the image (kept), "
            f"{self.degenerate} degenerate (zero area, excluded), {self.crowd} crowd (excluded)",
        ]
        if self.excluded:
            lines.append(
                f"Data [{self.split}] warning: {self.excluded} annotations are not used as "
                "targets (see box checks); fix the annotation file to train on them"
            )
        return lines
