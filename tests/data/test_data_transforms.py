"""Transforms: determinism from (seed, epoch, index), box correctness under flip, resize and the
official crop branch."""

import torch

from tbx_train.data import (
    CocoDetection,
    DetectionTransform,
    TransformConfig,
    collate_fn,
    sample_generator,
    tbx11k_source,
    write_synthetic_tbx11k,
)
from tbx_train.data.transforms import crop, crop_window, hflip, resize, resized_hw

BOXES = torch.tensor([[2.0, 4.0, 10.0, 20.0], [0.0, 0.0, 32.0, 24.0]])


def test_same_seed_epoch_index_gives_same_draws_and_epochs_differ():
    transform = DetectionTransform(TransformConfig.around(32), train=True)
    image = torch.arange(24 * 32, dtype=torch.uint8).reshape(1, 24, 32)

    def run(seed, epoch, index):
        return transform(image, BOXES.clone(), sample_generator(seed, epoch, index))

    a, b = run(0, 3, 5), run(0, 3, 5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]

    # Flip pattern over 64 samples: a function of the epoch (and seed), never of anything else.
    def flips(seed, epoch):
        config = TransformConfig.around(32, train_sizes=(32,), crop_prob=0.0)
        flip_only = DetectionTransform(config, train=True)
        out = [flip_only(image, BOXES, sample_generator(seed, epoch, i))[1] for i in range(64)]
        return [bool(boxes[0, 0] > 0.5) for boxes in out]  # box 0 starts left of centre

    assert flips(0, 0) == flips(0, 0)
    assert flips(0, 0) != flips(0, 1) and flips(0, 0) != flips(1, 0)
    assert 16 < sum(flips(0, 0)) < 48  # flip_prob 0.5


def test_hflip_mirrors_boxes_and_pixels():
    image = torch.zeros(1, 24, 32)
    image[0, 4:20, 2:10] = 1.0  # the first box's pixels
    flipped, boxes = hflip(image, BOXES)
    torch.testing.assert_close(
        boxes, torch.tensor([[22.0, 4.0, 30.0, 20.0], [0.0, 0.0, 32.0, 24.0]])
    )
    x0, y0, x1, y1 = boxes[0].int().tolist()
    assert flipped[0, y0:y1, x0:x1].min() == 1.0 and flipped.sum() == image.sum()
    again, back = hflip(flipped, boxes)
    assert torch.equal(again, image) and torch.equal(back, BOXES)


def test_resize_scales_boxes_with_the_image():
    image = torch.zeros(1, 24, 32)
    image[0, 4:20, 2:10] = 255.0
    out, boxes = resize(image, BOXES, (48, 64))
    assert out.shape == (1, 48, 64)
    torch.testing.assert_close(boxes[0], torch.tensor([4.0, 8.0, 20.0, 40.0]))
    inside = out[0, 9:39, 5:19]
    assert inside.min() > 250 and out[0, :, 22:].max() < 5  # the box still frames the object


def test_resized_hw_keeps_aspect_and_caps_the_long_side():
    assert resized_hw(512, 512, 608, 1024) == (608, 608)
    assert resized_hw(400, 800, 600, 1000) == (500, 1000)  # capped by max_size
    assert resized_hw(800, 400, 300, 1000) == (600, 300)


def test_defaults_are_the_official_recipe_at_the_user_run_sizes():
    config = TransformConfig()
    assert config.train_sizes == (480, 512, 544, 576, 608) and config.max_size == 640
    assert (config.crop_prob, config.crop_resize_sizes) == (0.5, (400, 500, 600))
    assert (config.crop_min, config.crop_max) == (384, 600)
    assert config.eval_size == 608  # evaluation at max(scales), as the official code
    evaluated = DetectionTransform(config, train=False)(
        torch.zeros(1, 512, 512, dtype=torch.uint8), BOXES, torch.Generator()
    )
    assert evaluated.size == (608, 608) and evaluated.image.shape == (3, 608, 608)
    assert TransformConfig(val_size=512).eval_size == 512


def test_dataset_draws_do_not_depend_on_order_or_workers(tmp_path):
    write_synthetic_tbx11k(tmp_path, images=12, seed=0, size=64)
    source = tbx11k_source(tmp_path)
    transform = DetectionTransform(TransformConfig.around(64), train=True)
    dataset = CocoDetection(source.train_json, source.image_root, transform, seed=5)
    dataset.set_epoch(2)
    forward = [dataset[i] for i in range(len(dataset))]
    backward = [dataset[i] for i in reversed(range(len(dataset)))][::-1]
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=1, num_workers=2, collate_fn=collate_fn
    )
    for (image, target), (image_b, _), (images_w, masks, targets_w) in zip(
        forward, backward, loader, strict=True
    ):
        assert torch.equal(image, image_b)
        h, w = target["size"].tolist()
        assert torch.equal(images_w[0, :, :h, :w], image) and not masks[0, :h, :w].any()
        assert torch.equal(targets_w[0]["boxes"], target["boxes"])
    dataset.set_epoch(3)  # another epoch: other sizes / flips for at least some samples
    later = [dataset[i][0].shape for i in range(len(dataset))]
    assert later != [image.shape for image, _ in forward]


def test_crop_keeps_the_visible_part_of_cut_boxes_and_flags_boxes_outside():
    image = torch.zeros(1, 10, 12)
    boxes = torch.tensor(
        [
            [3.0, 4.0, 5.0, 6.0],  # inside the window
            [0.0, 1.0, 4.0, 9.0],  # cut by the window's left and bottom edges
            [9.0, 0.0, 12.0, 2.0],  # outside (right of the window)
            [1.0, 3.0, 2.0, 8.0],  # outside (left of it): would clip to zero width
        ]
    )
    image[0, 4:6, 3:5] = 1.0
    image[0, 1:9, 0:4] = 2.0
    out, clipped, keep = crop(image, boxes, (2, 3, 6, 4))  # x 2..8, y 3..7
    assert out.shape == (1, 4, 6)
    assert keep.tolist() == [True, True, False, False]
    torch.testing.assert_close(clipped[0], torch.tensor([1.0, 1.0, 3.0, 3.0]))
    torch.testing.assert_close(clipped[1], torch.tensor([0.0, 0.0, 2.0, 4.0]))
    # the clipped boxes still frame their pixels in the cropped image
    assert out[0, 0:4, 0:2].eq(2.0).all() and out[0, 1:3, 1:3].ge(1.0).all()


def test_crop_window_follows_the_official_size_bounds():
    low, high = torch.zeros(4), torch.full((4,), 0.999999)
    assert crop_window(500, 700, 384, 600, low) == (0, 0, 384, 384)
    assert crop_window(500, 700, 384, 600, high) == (700 - 600, 0, 600, 500)  # <= image
    assert crop_window(100, 200, 384, 600, low) == (0, 0, 200, 100)  # smaller: kept whole


def _marked_sample(height=48, width=64):
    """Two boxes painted with their own grey level, at opposite corners."""
    image = torch.zeros(1, height, width, dtype=torch.uint8)
    boxes = torch.tensor([[2.0, 2.0, 22.0, 18.0], [40.0, 28.0, 62.0, 46.0]])
    image[0, 2:18, 2:22] = 100
    image[0, 28:46, 40:62] = 200
    return image, boxes


def test_both_branches_are_drawn_and_boxes_stay_on_their_pixels():
    config = TransformConfig(
        train_sizes=(48,), max_size=96, crop_resize_sizes=(48, 56), crop_min=24, crop_max=40,
        mean=(0.0, 0.0, 0.0), std=(1 / 255, 1 / 255, 1 / 255),  # keep 0..255 pixel values
    )  # fmt: skip
    transform = DetectionTransform(config, train=True)
    image, boxes = _marked_sample()
    outs = [transform(image, boxes, sample_generator(0, 0, i)) for i in range(64)]
    cropped = [out for out in outs if out.crop_window is not None]
    assert 16 < len(cropped) < 48  # RandomSelect p = 0.5: both branches over the indices
    assert any(out.cropped_out for out in cropped)  # some crops leave a box outside
    resized_only = [out for out in outs if out.crop_window is None]
    assert all(out.cropped_out == 0 and len(out.boxes) == 2 for out in resized_only)
    for out in outs:
        assert len(out.boxes) == int(out.keep.sum()) == 2 - out.cropped_out
        assert min(out.size) == 48 and out.image.shape[1:] == out.size
        corners = torch.cat(
            [out.boxes[:, :2] - out.boxes[:, 2:] / 2, out.boxes[:, :2] + out.boxes[:, 2:] / 2]
        )
        assert bool(((corners >= -1e-6) & (corners <= 1 + 1e-6)).all())  # inside the image
        h, w = out.size
        greys = torch.tensor([100, 200])[out.keep].tolist()  # the kept boxes' own grey levels
        for (cx, cy, bw, bh), grey in zip(out.boxes.tolist(), greys, strict=True):
            if bw * w >= 4 and bh * h >= 4:  # a sliver left by the crop has no clean centre
                assert abs(out.image[0, int(cy * h), int(cx * w)].item() - grey) < 30


def test_draw_count_is_fixed_so_branches_never_shift_later_draws():
    image, boxes = _marked_sample()
    after = []
    for crop_prob in (0.0, 1.0):
        generator = sample_generator(1, 2, 3)
        DetectionTransform(TransformConfig.around(48, crop_prob=crop_prob), train=True)(
            image, boxes, generator
        )
        after.append(torch.rand(1, generator=generator).item())
    assert after[0] == after[1]


def test_crop_samples_are_a_pure_function_of_seed_epoch_index():
    transform = DetectionTransform(TransformConfig.around(48, crop_prob=1.0), train=True)
    image, boxes = _marked_sample()
    a = transform(image, boxes, sample_generator(0, 1, 7))
    b = transform(image, boxes, sample_generator(0, 1, 7))
    assert a.crop_window == b.crop_window and torch.equal(a.image, b.image)
    assert torch.equal(a.boxes, b.boxes) and torch.equal(a.keep, b.keep)
    windows = {transform(image, boxes, sample_generator(0, e, 7)).crop_window for e in range(8)}
    assert len(windows) > 1  # other epochs crop elsewhere


def test_dataset_targets_drop_and_count_the_boxes_the_crop_removed(tmp_path):
    write_synthetic_tbx11k(tmp_path, images=12, seed=0, size=64)
    source = tbx11k_source(tmp_path)
    config = TransformConfig.around(64, crop_prob=1.0, crop_min=12, crop_max=20)  # small crops
    dataset = CocoDetection(
        source.train_json, source.image_root, DetectionTransform(config, train=True), seed=1
    )
    removed = 0
    for epoch in range(4):
        dataset.set_epoch(epoch)
        samples = [dataset[i] for i in range(len(dataset))]
        for index, (image, target) in enumerate(samples):
            record = dataset.records[index]
            kept, gone = len(target["boxes"]), int(target["cropped_out"])
            assert len(target["labels"]) == kept and kept + gone == len(record.labels)
            assert target["labels"].tolist() in _ordered_subsets(record.labels.tolist(), kept)
            assert tuple(target["size"].tolist()) == tuple(image.shape[1:])
            removed += gone
        _, masks, _ = collate_fn(samples)
        for (_, target), mask in zip(samples, masks, strict=True):
            h, w = target["size"].tolist()
            assert not mask[:h, :w].any() and mask.sum() == mask.numel() - h * w
    assert removed > 0  # the crop did cut boxes out, and each one was counted


def _ordered_subsets(labels: list[int], size: int) -> list[list[int]]:
    from itertools import combinations

    return [list(c) for c in combinations(labels, size)]
