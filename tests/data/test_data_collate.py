"""collate_fn: pads to the batch maximum, masks the padding, keeps targets."""

import pytest
import torch

from tbx_train.data import collate_fn


def test_pads_bottom_right_and_masks_padding():
    a, b = torch.full((3, 4, 6), 1.0), torch.full((3, 5, 3), 2.0)
    targets = [{"image_id": torch.tensor(1)}, {"image_id": torch.tensor(2)}]
    images, masks, out = collate_fn([(a, targets[0]), (b, targets[1])])
    assert images.shape == (2, 3, 5, 6) and masks.shape == (2, 5, 6) and masks.dtype == torch.bool
    assert torch.equal(images[0, :, :4, :6], a) and images[0, :, 4:].abs().sum() == 0
    assert torch.equal(images[1, :, :5, :3], b) and images[1, :, :, 3:].abs().sum() == 0
    assert masks[0].sum() == 6 and masks[0, 4].all() and not masks[0, :4].any()
    assert masks[1].sum() == 15 and masks[1, :, 3:].all() and not masks[1, :, :3].any()
    assert out is not targets and out == targets


def test_same_size_images_have_no_padding_and_empty_batch_fails():
    images, masks, _ = collate_fn([(torch.ones(3, 4, 4), {}), (torch.ones(3, 4, 4), {})])
    assert images.shape == (2, 3, 4, 4) and not masks.any()
    with pytest.raises(ValueError, match="empty batch"):
        collate_fn([])
