"""Transforms: determinism from (seed, epoch, index), box correctness under flip and resize."""

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
from tbx_train.data.transforms import hflip, resize, resized_hw

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
        config = TransformConfig.around(32, train_sizes=(32,))
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


def test_default_sizes_suit_512_xrays():
    config = TransformConfig()
    assert (
        config.val_size == 512 and min(config.train_sizes) == 384 and max(config.train_sizes) == 640
    )


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
