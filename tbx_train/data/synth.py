"""A synthetic TBX11K: chest-X-ray-like images with TB-like lesions, in the real TBX11K layout.

It is the embedded default of the demo and the tests: small, fast to write, deterministic for a
seed (the same seed gives byte-identical files), and a task a tiny DINO learns on CPU.

Layout (as TBX11K; json `file_name` is relative to `imgs/`)::

    DIR/imgs/health/h0001.png   healthy: no boxes
    DIR/imgs/sick/s0002.png     sick but not TB: a faint basal haze (a distractor), no boxes
    DIR/imgs/tb/tb0003.png      TB: 1-3 lesion boxes
    DIR/annotations/json/TBX11K_train.json, TBX11K_val.json

Each image is grayscale (8-bit PNG): a bright body, two darker lung fields, rib-like bands and
noise, faint vessel dots (never boxed), and a per-image exposure (contrast, brightness). The three
categories look different so the task is learnable but not trivial:

- 1 ActiveTuberculosis: a medium, filled, cloudy (textured) opacity.
- 2 ObsoletePulmonaryTuberculosis: a small, very bright, sharp-edged (calcified) nodule.
- 3 PulmonaryTuberculosis: a cavity: a bright ring around a dark centre.

Sizes scale with the image size (the defaults are for 128 px; real TBX11K images are 512 px).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

CATEGORIES: tuple[str, ...] = (
    "ActiveTuberculosis",
    "ObsoletePulmonaryTuberculosis",
    "PulmonaryTuberculosis",
)
# Image kinds, their folder and file-name prefix, and their share of the data set.
KINDS: tuple[tuple[str, str, float], ...] = (
    ("health", "h", 0.2),
    ("sick", "s", 0.15),
    ("tb", "tb", 0.65),
)
CATEGORY_WEIGHTS = (0.4, 0.3, 0.3)  # share of lesions per category id 1..3
# Lesion diameter range as a fraction of the image side, per category id 1..3.
LESION_DIAMETER = {1: (0.16, 0.24), 2: (0.09, 0.13), 3: (0.17, 0.23)}


@dataclass(frozen=True)
class SynthSummary:
    """What `write_synthetic_tbx11k` wrote (counts per split, paths)."""

    root: Path
    train_images: int
    val_images: int
    train_boxes: int
    val_boxes: int


@dataclass(frozen=True)
class _Lesion:
    category_id: int
    cx: float
    cy: float
    rx: float
    ry: float

    def bbox_xywh(self, size: int) -> list[float]:
        x0, y0 = max(self.cx - self.rx, 0.0), max(self.cy - self.ry, 0.0)
        x1, y1 = min(self.cx + self.rx, float(size)), min(self.cy + self.ry, float(size))
        return [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]


def _lungs(rng: np.random.Generator, size: int) -> list[tuple[float, float, float, float]]:
    """Two lung fields (cx, cy, rx, ry), mirrored around the centre with jitter."""
    cy = size * rng.uniform(0.48, 0.54)
    rx, ry = size * rng.uniform(0.17, 0.2), size * rng.uniform(0.3, 0.34)
    dx = size * rng.uniform(0.2, 0.23)
    return [(size / 2 - dx, cy, rx, ry), (size / 2 + dx, cy, rx * rng.uniform(0.92, 1.0), ry)]


def _ellipse_field(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, rx: float, ry: float):
    """Normalised squared radius: < 1 inside the ellipse."""
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2


def _inside(r2: np.ndarray, edge: float, sharpness: float) -> np.ndarray:
    """Soft indicator of r2 < edge (a logistic step; clipped so exp never overflows)."""
    return 1.0 / (1.0 + np.exp(np.clip((r2 - edge) * sharpness, -60.0, 60.0)))


def _background(rng: np.random.Generator, size: int, xx, yy, lungs) -> np.ndarray:
    """Body, lung fields, ribs and a vertical spine shadow, as float intensities in ~[0, 255]."""
    body = _ellipse_field(xx, yy, size / 2, size * 0.55, size * 0.48, size * 0.6)
    image = 25.0 + 145.0 * _inside(body, 1.0, 12.0)  # soft body edge
    lung_mask = np.zeros_like(image)
    for cx, cy, rx, ry in lungs:
        lung_mask = np.maximum(
            lung_mask, _inside(_ellipse_field(xx, yy, cx, cy, rx, ry), 1.0, 10.0)
        )
    image -= 75.0 * lung_mask
    # Ribs: bands that curve down towards the sides; visible mostly over the lungs.
    phase = rng.uniform(0, 2 * np.pi)
    curve = yy + 0.25 * (xx - size / 2) ** 2 / size
    ribs = np.sin(curve / size * 2 * np.pi * rng.uniform(5.5, 7.0) + phase)
    image += 16.0 * np.clip(ribs, 0, None) * (0.4 + 0.6 * lung_mask)
    return image


def _place_lesions(rng: np.random.Generator, size: int, lungs, count: int) -> list[_Lesion]:
    """Non-overlapping lesions inside the lung fields (rejection sampling, bounded tries)."""
    lesions: list[_Lesion] = []
    for _ in range(count * 20):
        if len(lesions) == count:
            break
        category_id = int(rng.choice(3, p=CATEGORY_WEIGHTS)) + 1
        low, high = LESION_DIAMETER[category_id]
        rx = size * rng.uniform(low, high) / 2
        ry = rx * rng.uniform(0.8, 1.2)
        lcx, lcy, lrx, lry = lungs[int(rng.integers(2))]
        angle, radius = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform(0, 1)) * 0.65
        cx, cy = lcx + radius * lrx * np.cos(angle), lcy + radius * lry * np.sin(angle)
        if any(abs(cx - o.cx) < rx + o.rx + 2 and abs(cy - o.cy) < ry + o.ry + 2 for o in lesions):
            continue  # boxes must not overlap: one lesion, one box
        lesions.append(_Lesion(category_id, float(cx), float(cy), float(rx), float(ry)))
    return lesions


def _draw_lesion(image: np.ndarray, rng: np.random.Generator, xx, yy, lesion: _Lesion) -> None:
    """Add one lesion's intensity in place; the look depends on the category (see module doc)."""
    r2 = _ellipse_field(xx, yy, lesion.cx, lesion.cy, lesion.rx, lesion.ry)
    strength = rng.uniform(0.75, 1.15)  # lesions vary in density, as real ones do
    if lesion.category_id == 1:  # cloudy filled opacity with a soft edge and texture
        texture = 0.6 + 0.4 * np.sin(xx * rng.uniform(0.5, 0.9) + rng.uniform(0, 6)) * np.cos(
            yy * rng.uniform(0.5, 0.9) + rng.uniform(0, 6)
        )
        image += strength * 70.0 * texture * _inside(r2, 0.85, 8.0)
    elif lesion.category_id == 2:  # calcified nodule: very bright, sharp edge
        image += strength * 120.0 * _inside(r2, 0.9, 25.0)
    else:  # cavity: bright ring, dark centre
        ring = np.exp(-(((np.sqrt(r2) - 0.8) / 0.16) ** 2))
        image += strength * (85.0 * ring - 25.0 * _inside(r2, 0.3, 15.0))


def _draw_vessels(image: np.ndarray, rng: np.random.Generator, lungs, size: int) -> None:
    """Faint small dots in the lungs (vessels seen end-on): in every image, never boxed."""
    for _ in range(int(rng.integers(3, 8))):
        cx, cy, rx, ry = lungs[int(rng.integers(2))]
        angle, radius = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform(0, 1)) * 0.8
        x, y = cx + radius * rx * np.cos(angle), cy + radius * ry * np.sin(angle)
        r = size * rng.uniform(0.01, 0.02)
        # Only a small window around the dot: a full-image pass per dot would be slow at 512 px.
        x0, x1 = max(int(x - 3 * r), 0), min(int(x + 3 * r) + 1, size)
        y0, y1 = max(int(y - 3 * r), 0), min(int(y + 3 * r) + 1, size)
        wy, wx = np.mgrid[y0:y1, x0:x1]
        image[y0:y1, x0:x1] += rng.uniform(20, 35) * np.exp(-((wx - x) ** 2 + (wy - y) ** 2) / r**2)


def render_image(seed: int, index: int, kind: str, size: int) -> tuple[np.ndarray, list[_Lesion]]:
    """One image (uint8 [size, size]) and its lesions; a pure function of the four arguments."""
    rng = np.random.default_rng([seed, index])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    lungs = _lungs(rng, size)
    image = _background(rng, size, xx, yy, lungs)
    lesions: list[_Lesion] = []
    if kind == "sick":  # a faint haze at one lung base: abnormal, but not TB (no box)
        cx, cy, rx, ry = lungs[int(rng.integers(2))]
        haze = np.clip((yy - cy) / ry, 0, 1) * (_ellipse_field(xx, yy, cx, cy, rx, ry) < 1)
        image += 35.0 * haze
    elif kind == "tb":
        lesions = _place_lesions(rng, size, lungs, int(rng.integers(1, 4)))
        for lesion in lesions:
            _draw_lesion(image, rng, xx, yy, lesion)
    _draw_vessels(image, rng, lungs, size)
    # Exposure varies between X-rays: global contrast and brightness per image.
    image = (image - 110.0) * rng.uniform(0.8, 1.2) + 110.0 + rng.uniform(-15.0, 15.0)
    image += rng.normal(0.0, 6.0, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), lesions


def _write_png(path: Path, pixels: np.ndarray) -> None:
    # Fast compression: PNG encoding dominates the run time; output is still deterministic.
    Image.fromarray(pixels, mode="L").save(path, format="PNG", compress_level=1)


def _plan(seed: int, images: int, val_fraction: float) -> list[tuple[str, str]]:
    """(kind, split) per image index, shuffled deterministically for the seed."""
    counts = [round(images * share) for _, _, share in KINDS]
    counts[-1] = images - sum(counts[:-1])
    kinds = [name for (name, _, _), n in zip(KINDS, counts, strict=True) for _ in range(n)]
    rng = np.random.default_rng([seed, 0xC0C0])
    order = rng.permutation(images)
    n_val = max(1, round(images * val_fraction)) if images > 1 else 0
    val = set(rng.permutation(images)[:n_val].tolist())
    return [(kinds[order[i]], "val" if i in val else "train") for i in range(images)]


def _coco_skeleton() -> dict:
    categories = [
        {"id": i + 1, "name": name, "supercategory": "TB"} for i, name in enumerate(CATEGORIES)
    ]
    return {
        "info": {"description": "synthetic TBX11K (tbx-train synth)"},
        "images": [],
        "annotations": [],
        "categories": categories,
    }


def write_synthetic_tbx11k(
    root: str | Path,
    images: int = 360,
    seed: int = 0,
    size: int = 128,
    val_fraction: float = 1 / 6,
) -> SynthSummary:
    """Write `images` synthetic X-rays (train + val) under `root` in the TBX11K layout.

    The defaults (360 images, 128 px) give 300 train and 60 val images; ~65% are TB images with
    1-3 boxes, the rest healthy or sick without boxes. Image ids are 1..images (unique across the
    two splits); box ids likewise. The same (images, seed, size, val_fraction) writes
    byte-identical files.
    """
    if images < 2 or size < 32:
        raise ValueError(f"need images >= 2 and size >= 32 px (got images={images}, size={size})")
    root = Path(root)
    for folder, _, _ in KINDS:
        (root / "imgs" / folder).mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "json").mkdir(parents=True, exist_ok=True)
    splits = {"train": _coco_skeleton(), "val": _coco_skeleton()}
    prefix = {name: p for name, p, _ in KINDS}
    box_id = 0
    for index, (kind, split) in enumerate(_plan(seed, images, val_fraction)):
        image_id = index + 1
        pixels, lesions = render_image(seed, image_id, kind, size)
        file_name = f"{kind}/{prefix[kind]}{image_id:04d}.png"
        _write_png(root / "imgs" / file_name, pixels)
        dataset = splits[split]
        dataset["images"].append(
            {"id": image_id, "file_name": file_name, "width": size, "height": size}
        )
        for lesion in lesions:
            box_id += 1
            bbox = lesion.bbox_xywh(size)
            dataset["annotations"].append(
                {
                    "id": box_id,
                    "image_id": image_id,
                    "category_id": lesion.category_id,
                    "bbox": bbox,
                    "area": round(bbox[2] * bbox[3], 2),
                    "iscrowd": 0,
                }
            )
    for split, dataset in splits.items():
        path = root / "annotations" / "json" / f"TBX11K_{split}.json"
        path.write_text(json.dumps(dataset, separators=(",", ":")) + "\n")
    return SynthSummary(
        root=root,
        train_images=len(splits["train"]["images"]),
        val_images=len(splits["val"]["images"]),
        train_boxes=len(splits["train"]["annotations"]),
        val_boxes=len(splits["val"]["annotations"]),
    )
