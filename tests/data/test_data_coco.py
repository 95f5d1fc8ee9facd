"""COCO data set and start-up report on a hand-made annotation file."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tbx_train.data import (
    CocoDetection,
    DataError,
    DetectionTransform,
    MissingImagesError,
    TransformConfig,
    build_datasets,
    num_classes_for,
    tbx11k_source,
    write_synthetic_tbx11k,
)

CATEGORIES = [{"id": 1, "name": "A"}, {"id": 2, "name": "B"}, {"id": 3, "name": "C"}]
VAL = DetectionTransform(TransformConfig.around(64), train=False)


def _image(path, mode, size=(64, 48)):
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = () if mode == "L" else (3,)
    pixels = np.random.default_rng(0).integers(0, 255, size=(size[1], size[0], *channels))
    Image.fromarray(pixels.astype(np.uint8), mode=mode).save(path)


def _coco(tmp_path, images, annotations):
    ann_file = tmp_path / "ann.json"
    data = {"images": images, "annotations": annotations, "categories": CATEGORIES}
    ann_file.write_text(json.dumps(data))
    return ann_file


def _ann(ann_id, image_id, category_id, bbox, iscrowd=0):
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": bbox,
            "iscrowd": iscrowd, "area": bbox[2] * bbox[3]}  # fmt: skip


@pytest.fixture
def handmade(tmp_path):
    """3 images 64x48 (w x h): gray with 4 boxes, RGB with 1, gray with none."""
    images = [
        {"id": 1, "file_name": "a/g1.png", "width": 64, "height": 48},
        {"id": 2, "file_name": "b/c2.png", "width": 64, "height": 48},
        {"id": 3, "file_name": "a/g3.png", "width": 64, "height": 48},
    ]
    annotations = [
        _ann(1, 1, 1, [10, 10, 20, 10]),  # fine
        _ann(2, 1, 2, [50, 40, 30, 20]),  # out of bounds: clipped to [50, 40, 64, 48]
        _ann(3, 1, 3, [5, 5, 0, 10]),  # zero width: degenerate
        _ann(4, 1, 1, [70, 5, 10, 10]),  # entirely right of the image: degenerate after clipping
        _ann(5, 2, 3, [0, 0, 64, 48]),  # fine, whole image
        _ann(6, 2, 2, [1, 1, 5, 5], iscrowd=1),  # crowd: excluded
    ]
    _image(tmp_path / "imgs/a/g1.png", "L")
    _image(tmp_path / "imgs/b/c2.png", "RGB")
    _image(tmp_path / "imgs/a/g3.png", "L")
    return _coco(tmp_path, images, annotations), tmp_path / "imgs"


def test_report_counts_every_box_fix_up(handmade):
    ann_file, root = handmade
    report = CocoDetection(ann_file, root, VAL, split="train").report
    assert (report.images, report.images_with_boxes, report.images_without_boxes) == (3, 2, 1)
    assert report.boxes == 3
    assert report.boxes_per_class == {"A": 1, "B": 1, "C": 1}
    assert (report.clipped, report.degenerate, report.crowd) == (1, 2, 1)
    text = "\n".join(report.render())
    assert "3 images: 2 with boxes, 1 without; 3 boxes (A 1, B 1, C 1)" in text
    assert "1 clipped to the image (kept), 2 degenerate (zero area, excluded), 1 crowd" in text
    assert "warning: 3 annotations are not used as targets" in text
    assert report.to_dict()["images_without_boxes"] == 1


def test_targets_follow_the_contract(handmade):
    ann_file, root = handmade
    dataset = CocoDetection(ann_file, root, VAL)
    image, target = dataset[0]
    # 64x48 with shorter side 64 (max 128) -> 85x64 (w x h)
    assert image.shape == (3, 64, 85) and image.dtype == torch.float32
    torch.testing.assert_close(image[0] * 0.229 + 0.485, image[1] * 0.224 + 0.456)  # gray x3
    assert target["labels"].tolist() == [1, 2] and target["labels"].dtype == torch.int64
    expected = torch.tensor(
        [[20 / 64, 15 / 48, 20 / 64, 10 / 48], [57 / 64, 44 / 48, 14 / 64, 8 / 48]]
    )
    torch.testing.assert_close(target["boxes"], expected)
    assert target["image_id"].item() == 1 and target["image_id"].shape == ()
    assert target["orig_size"].tolist() == [48, 64] and target["size"].tolist() == [64, 85]
    rgb, _ = dataset[1]
    assert (rgb[0] * 0.229 + 0.485 - rgb[1] * 0.224 - 0.456).abs().max() > 0.1
    _, empty = dataset[2]  # kept, with empty targets of the right shapes
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)
    assert num_classes_for(dataset) == 4


def test_missing_files_raise_with_paths_and_count(tmp_path):
    images = [{"id": i, "file_name": f"x/{i}.png", "width": 8, "height": 8} for i in range(1, 9)]
    _image(tmp_path / "imgs/x/1.png", "L", size=(8, 8))
    ann_file = _coco(tmp_path, images, [])
    with pytest.raises(MissingImagesError) as caught:
        CocoDetection(ann_file, tmp_path / "imgs", VAL)
    assert len(caught.value.missing) == 7 and caught.value.total == 8
    message = str(caught.value)
    assert message.startswith("7 of 8 images listed in")
    assert str(tmp_path / "imgs/x/2.png") in message and "... and 2 more" in message
    assert str(tmp_path / "imgs/x/8.png") not in message  # only the first few are listed


def test_bad_annotation_files_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        CocoDetection(tmp_path / "none.json", tmp_path, VAL)
    images = [{"id": 1, "file_name": "1.png", "width": 8, "height": 8}]
    ann_file = _coco(tmp_path, images, [_ann(1, 1, 9, [0, 0, 2, 2])])
    with pytest.raises(DataError, match=r"category ids \[9\]"):
        CocoDetection(ann_file, tmp_path, VAL, check_files=False)


def test_image_size_disagreeing_with_json_is_an_error(tmp_path):
    _image(tmp_path / "1.png", "L", size=(16, 8))
    ann_file = _coco(tmp_path, [{"id": 1, "file_name": "1.png", "width": 8, "height": 8}], [])
    with pytest.raises(DataError, match="16x8"):
        CocoDetection(ann_file, tmp_path, VAL)[0]


def test_tbx11k_layout_builds_train_and_val(tmp_path):
    write_synthetic_tbx11k(tmp_path, images=12, seed=0, size=64)
    train, val = build_datasets(tbx11k_source(tmp_path), TransformConfig.around(64), seed=3)
    assert (len(train), len(val)) == (10, 2)
    assert train.category_names == [
        "ActiveTuberculosis",
        "ObsoletePulmonaryTuberculosis",
        "PulmonaryTuberculosis",
    ]
    assert train.report.images_with_boxes + train.report.images_without_boxes == 10
    image, target = val[0]
    assert image.shape == (3, 64, 64) and target["size"].tolist() == [64, 64]


def test_read_image_channels_and_16_bit_scaling(tmp_path):
    from tbx_train.data import read_image

    wide = np.array([[0, 256, 65535]], dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "x16.png")  # a 16-bit grayscale PNG
    gray16 = read_image(tmp_path / "x16.png")
    assert gray16.dtype == torch.uint8 and gray16.shape == (1, 1, 3)
    assert gray16.flatten().tolist() == [0, 0, 255]  # 16-bit range mapped onto 0..255
    Image.fromarray(np.array([[0, 7, 255]], dtype=np.uint8)).save(tmp_path / "x8.png")
    assert read_image(tmp_path / "x8.png").flatten().tolist() == [0, 7, 255]
    Image.new("P", (4, 2)).save(tmp_path / "p.png")  # palette -> RGB
    assert read_image(tmp_path / "p.png").shape == (3, 2, 4)
