"""The synthetic TBX11K: layout, json fields, determinism, and that the CLI writes it."""

import hashlib
import json
from pathlib import Path

from typer.testing import CliRunner

from tbx_train.cli import app
from tbx_train.data.synth import CATEGORIES, write_synthetic_tbx11k


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_writes_byte_identical_files(tmp_path):
    write_synthetic_tbx11k(tmp_path / "a", images=24, seed=7)
    write_synthetic_tbx11k(tmp_path / "b", images=24, seed=7)
    write_synthetic_tbx11k(tmp_path / "c", images=24, seed=8)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert len(a) == 24 + 2
    assert a == b
    assert a != c


def test_layout_and_json_fields_match_tbx11k(tmp_path):
    summary = write_synthetic_tbx11k(tmp_path, images=60, seed=1, size=96)
    train = json.loads((tmp_path / "annotations/json/TBX11K_train.json").read_text())
    val = json.loads((tmp_path / "annotations/json/TBX11K_val.json").read_text())
    assert (summary.train_images, summary.val_images) == (50, 10)
    assert [c["name"] for c in train["categories"]] == list(CATEGORIES)
    assert [c["id"] for c in train["categories"]] == [1, 2, 3]
    images = train["images"] + val["images"]
    assert sorted(im["id"] for im in images) == list(range(1, 61))
    with_boxes = {a["image_id"] for a in train["annotations"] + val["annotations"]}
    for image in images:
        folder = image["file_name"].split("/")[0]
        assert (tmp_path / "imgs" / image["file_name"]).is_file()
        assert (image["width"], image["height"]) == (96, 96)
        # TB images (and only those) have boxes.
        assert (image["id"] in with_boxes) == (folder == "tb"), image
    share_without = 1 - len(with_boxes) / len(images)
    assert 0.3 <= share_without <= 0.4
    for ann in train["annotations"]:
        x, y, w, h = ann["bbox"]
        assert ann["iscrowd"] == 0 and ann["category_id"] in (1, 2, 3)
        assert x >= 0 and y >= 0 and x + w <= 96 and y + h <= 96 and w > 4 and h > 4
        assert abs(ann["area"] - w * h) < 0.05
    per_image = {}
    for ann in train["annotations"]:
        per_image[ann["image_id"]] = per_image.get(ann["image_id"], 0) + 1
    assert set(per_image.values()) <= {1, 2, 3}


def test_lesions_are_visible_in_their_boxes(tmp_path):
    """A lesion box is brighter than the lung around it: the task is learnable from pixels."""
    import numpy as np
    from PIL import Image

    write_synthetic_tbx11k(tmp_path, images=30, seed=2)
    train = json.loads((tmp_path / "annotations/json/TBX11K_train.json").read_text())
    files = {im["id"]: im["file_name"] for im in train["images"]}
    contrasts = []
    for ann in train["annotations"]:
        pixels = np.asarray(Image.open(tmp_path / "imgs" / files[ann["image_id"]]), dtype=float)
        x, y, w, h = (round(v) for v in ann["bbox"])
        x0, y0 = max(x - 6, 0), max(y - 6, 0)
        around = pixels[y0 : y + h + 6, x0 : x + w + 6].copy()
        around[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = np.nan  # keep the margin only
        # Bright parts of the lesion (rings have dark centres) against the surrounding lung;
        # random lesion-free boxes in healthy images give a median of ~18 here; the faintest
        # lesions (low exposure contrast, low density, ActiveTuberculosis) give ~25.
        contrasts.append(np.percentile(pixels[y : y + h, x : x + w], 90) - np.nanmedian(around))
    assert min(contrasts) > 20 and np.median(contrasts) > 40, contrasts


def test_cli_synth_writes_the_layout(tmp_path):
    result = CliRunner().invoke(app, ["synth", str(tmp_path / "out"), "--images", "12"])
    assert result.exit_code == 0, result.output
    assert "train 10 images" in result.output and "val 2 images" in result.output
    assert (tmp_path / "out/annotations/json/TBX11K_train.json").is_file()
