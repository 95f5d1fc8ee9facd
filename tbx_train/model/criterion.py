"""DINO's training losses: focal classification, L1 and GIoU on matched boxes, for every output.

The criterion receives the model's `outputs` (see `SetCriterion.forward`) and returns one dict of
0-dim tensors. Loss keys (for dec_layers = L):

    loss_ce, loss_bbox, loss_giou                 final decoder layer
    the same + _0 .. _{L-2}                       the earlier decoder layers (aux_outputs)
    the same + _interm                            the encoder proposals (two-stage query selection)
    the same + _dn, _dn_0 .. _dn_{L-2}            the denoising queries (final, then earlier layers)

which is 3 * (1 + (L-1) + 1 + L) weighted terms (39 for L = 6), with weights in
`criterion.weight_dict` (see `build_weight_dict`). When a batch has no denoising part (`dn_meta` is
None: no GT in the batch, or evaluation) the dn keys are zeros, so the key set never changes.
Two logging values are not losses: `class_error` and `class_error_images` (see `class_error`).

Normalisation: every loss is a sum over the batch divided by `num_boxes` (the denoising ones by
`num_boxes * num_dn_group`), so the losses of micro-batches computed with the step's global box
count add up to the loss of the whole step, whatever the split over GPUs and accumulation steps.
Two caveats for the engine:
- DDP averages gradients over ranks, so each rank must pass (boxes of the whole step) / world_size,
  as the official code does; then the averaged gradient is the gradient of the step's loss.
- The dn losses use the group count of each micro-batch (the official quirk makes it depend on
  the largest GT count in that micro-batch), so they add up exactly only when micro-batches share
  the dn layout; this matches the official per-GPU behaviour.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tbx_train.config import ModelConfig
from tbx_train.model.box_ops import box_cxcywh_to_xyxy, elementwise_generalized_box_iou
from tbx_train.model.matcher import HungarianMatcher

LOSS_NAMES = ("loss_ce", "loss_bbox", "loss_giou")
Indices = list[tuple[Tensor, Tensor]]


def loss_suffixes(dec_layers: int) -> list[str]:
    """Suffixes of the weighted loss keys in order: final, aux layers, interm, dn, dn aux layers."""
    aux = [f"_{i}" for i in range(dec_layers - 1)]
    dn_aux = [f"_dn_{i}" for i in range(dec_layers - 1)]
    return ["", *aux, "_interm", "_dn", *dn_aux]


def build_weight_dict(config: ModelConfig) -> dict[str, float]:
    """Weight of every loss key: cls/bbox/giou coefficients, the same for every suffix (as DINO)."""
    coefs = {
        "loss_ce": config.cls_loss_coef,
        "loss_bbox": config.bbox_loss_coef,
        "loss_giou": config.giou_loss_coef,
    }
    return {
        f"{name}{suffix}": coefs[name]
        for suffix in loss_suffixes(config.dec_layers)
        for name in LOSS_NAMES
    }


def weighted_total(losses: dict[str, Tensor], weight_dict: dict[str, float]) -> Tensor:
    """The scalar to back-propagate: sum of weight * loss over the weighted keys (all required)."""
    missing = [key for key in weight_dict if key not in losses]
    if missing:
        raise KeyError(f"losses lack weighted keys {missing}; the criterion and weights disagree")
    terms = [losses[key] * weight for key, weight in weight_dict.items()]
    return torch.stack(terms).sum()


def sigmoid_focal_loss(
    logits: Tensor, positives: tuple[Tensor, Tensor, Tensor], alpha: float, gamma: float
) -> Tensor:
    """Focal loss (Lin et al. 2017) summed over all elements of `logits` [B, Q, C].

    The target is 1 at the (batch, query, class) index triples `positives` and 0 elsewhere.
    alpha weighs positives (1 - alpha negatives); alpha < 0 disables the weighting, as in DETR.
    Computed as "every element negative" plus a correction at the few positives, which needs
    far fewer passes over [B, Q, C] than building the one-hot target (same value and gradient).
    """
    pos_weight, neg_weight = (alpha, 1 - alpha) if alpha >= 0 else (1.0, 1.0)
    prob = logits.sigmoid()
    # Target 0: BCE = softplus(x) = -log(1 - p), modulated by p^gamma.
    negative = neg_weight * prob.pow(gamma) * F.softplus(logits)
    x, p = logits[positives], prob[positives]
    positive = pos_weight * (1 - p).pow(gamma) * F.softplus(-x)  # target 1: -log(p) (1 - p)^gamma
    return negative.sum() + (positive - negative[positives]).sum()


def _flat_pred_indices(indices: Indices, device: torch.device) -> tuple[Tensor, Tensor]:
    """(batch index, query index) of all matched predictions, concatenated over images."""
    batch_idx = torch.cat([torch.full_like(pred, b) for b, (pred, _) in enumerate(indices)])
    pred_idx = torch.cat([pred for pred, _ in indices])
    return batch_idx.to(device), pred_idx.to(device)


def _matched_targets(targets: list[dict[str, Tensor]], indices: Indices, key: str) -> Tensor:
    """targets[b][key][tgt_idx] concatenated over images, in the order of `_flat_pred_indices`."""
    pairs = zip(targets, indices, strict=True)
    return torch.cat([t[key][tgt.to(t[key].device)] for t, (_, tgt) in pairs])


def dn_positive_indices(dn_meta: dict[str, Any], targets: list[dict[str, Tensor]]) -> Indices:
    """Indices of the positive denoising queries in the official layout (see CONTRACTS.md).

    The dn part holds `num_dn_group` groups of single_pad = pad_size // num_dn_group slots; the
    positive copy of GT j in group g sits at g * single_pad + j, so image b gets
    pred_idx = [g * single_pad + j for g, j] and tgt_idx = [j for g, j] (groups outer).
    """
    groups = int(dn_meta["num_dn_group"])
    pad_size = int(dn_meta["pad_size"])
    if groups < 1 or pad_size % groups:
        raise ValueError(f"dn_meta: pad_size={pad_size} is not a multiple of num_dn_group={groups}")
    single_pad = pad_size // groups
    group_starts = torch.arange(groups, dtype=torch.int64) * single_pad  # [G]
    indices = []
    for target in targets:
        n = target["labels"].numel()
        if n > single_pad // 2:
            raise ValueError(
                f"dn_meta: an image has {n} GT boxes but a dn group has only "
                f"{single_pad // 2} positive slots"
            )
        gt = torch.arange(n, dtype=torch.int64)
        pred_idx = (group_starts[:, None] + gt[None, :]).flatten()  # [G, n] -> [G * n]
        indices.append((pred_idx, gt.repeat(groups)))
    return indices


class SetCriterion(nn.Module):
    """DINO's losses for the final layer, the aux layers, the encoder proposals and denoising.

    Labels are used raw as class indices (num_classes = max category id + 1); the focal target is a
    one-hot over the num_classes logits, all zeros for unmatched queries (no no-object column).
    """

    def __init__(
        self,
        num_classes: int,
        matcher: HungarianMatcher,
        weight_dict: dict[str, float],
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        dec_layers: int = 6,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.matcher = matcher
        self.weight_dict = dict(weight_dict)
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.dec_layers = dec_layers

    def loss_labels(
        self, outputs: dict[str, Tensor], indices: Indices, labels: Tensor, num_boxes: float
    ) -> Tensor:
        """Focal loss over all queries x classes / num_boxes; `labels` are the matched GT labels."""
        logits = outputs["pred_logits"].float()  # [B, Q, C]
        batch_idx, pred_idx = _flat_pred_indices(indices, logits.device)
        positives = (batch_idx, pred_idx, labels.to(logits.device))
        loss = sigmoid_focal_loss(logits, positives, self.focal_alpha, self.focal_gamma)
        return loss / num_boxes

    def loss_boxes(
        self, outputs: dict[str, Tensor], indices: Indices, boxes_cxcywh: Tensor, num_boxes: float
    ) -> tuple[Tensor, Tensor]:
        """(L1, 1 - GIoU) summed over matched pairs / num_boxes; `boxes_cxcywh`: the matched GT."""
        pred_boxes = outputs["pred_boxes"].float()
        batch_idx, pred_idx = _flat_pred_indices(indices, pred_boxes.device)
        src = pred_boxes[batch_idx, pred_idx]  # [M, 4]
        tgt = boxes_cxcywh.to(src.device, torch.float32)
        loss_bbox = F.l1_loss(src, tgt, reduction="sum") / num_boxes
        giou = elementwise_generalized_box_iou(box_cxcywh_to_xyxy(src), box_cxcywh_to_xyxy(tgt))
        return loss_bbox, (1 - giou).sum() / num_boxes

    def layer_losses(
        self,
        outputs: dict[str, Tensor],
        targets: list[dict[str, Tensor]],
        indices: Indices,
        num_boxes: float,
        suffix: str,
    ) -> dict[str, Tensor]:
        """The three losses of one output (a layer, the proposals or a dn part), keys + suffix."""
        labels = _matched_targets(targets, indices, "labels")
        boxes = _matched_targets(targets, indices, "boxes")
        loss_bbox, loss_giou = self.loss_boxes(outputs, indices, boxes, num_boxes)
        return {
            f"loss_ce{suffix}": self.loss_labels(outputs, indices, labels, num_boxes),
            f"loss_bbox{suffix}": loss_bbox,
            f"loss_giou{suffix}": loss_giou,
        }

    @torch.no_grad()
    def class_error(
        self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]], indices: Indices
    ) -> dict[str, Tensor]:
        """100 - top-1 accuracy (%) of the matched final-layer queries, over images with targets.

        Images without targets have no matched queries and are left out (DETR would report 100
        for them). Returns `class_error` (0 when no image has targets) and `class_error_images`,
        the number of images it covers, both 0-dim float tensors, so callers can weight by images.
        """
        logits = outputs["pred_logits"]
        batch_idx, pred_idx = _flat_pred_indices(indices, logits.device)
        labels = _matched_targets(targets, indices, "labels").to(logits.device)
        images = sum(1 for t in targets if t["labels"].numel() > 0)
        if labels.numel() == 0:
            error = logits.new_zeros((), dtype=torch.float32)
        else:
            correct = logits[batch_idx, pred_idx].argmax(-1) == labels
            error = 100.0 - 100.0 * correct.float().mean()
        return {
            "class_error": error,
            "class_error_images": torch.tensor(float(images), device=logits.device),
        }

    def dn_losses(
        self,
        dn_meta: dict[str, Any] | None,
        targets: list[dict[str, Tensor]],
        num_boxes: float,
        device: torch.device,
    ) -> dict[str, Tensor]:
        """Losses of the denoising outputs on their positive queries / (num_boxes * groups).

        The negative queries only enter through the focal loss (their target is all zeros).
        Without dn_meta every dn key is a zero, keeping the key set stable.
        """
        suffixes = ["_dn", *[f"_dn_{i}" for i in range(self.dec_layers - 1)]]
        if dn_meta is None:
            # A fresh tensor per key: callers may reduce the values in place.
            return {
                f"{name}{suffix}": torch.zeros((), device=device)
                for suffix in suffixes
                for name in LOSS_NAMES
            }
        known = dn_meta["output_known_lbs_bboxes"]
        if known["pred_logits"].shape[1] != int(dn_meta["pad_size"]):
            raise ValueError(
                f"dn outputs have {known['pred_logits'].shape[1]} queries but "
                f"pad_size={dn_meta['pad_size']}"
            )
        aux = known.get("aux_outputs", [])
        if len(aux) != self.dec_layers - 1:
            raise ValueError(
                f"dn_meta has {len(aux)} aux outputs; dec_layers={self.dec_layers} needs "
                f"{self.dec_layers - 1}"
            )
        indices = dn_positive_indices(dn_meta, targets)
        dn_num_boxes = num_boxes * int(dn_meta["num_dn_group"])
        losses: dict[str, Tensor] = {}
        for suffix, layer_outputs in zip(suffixes, [known, *aux], strict=True):
            losses.update(self.layer_losses(layer_outputs, targets, indices, dn_num_boxes, suffix))
        return losses

    def _check_inputs(self, outputs: dict[str, Any], targets: list[dict[str, Tensor]]) -> None:
        """Fail early, naming the mismatch, instead of an index error deep in a loss."""
        for key in ("pred_logits", "pred_boxes", "aux_outputs", "interm_outputs"):
            if key not in outputs:
                raise KeyError(f"SetCriterion: outputs lack {key!r} (see the model contract)")
        logits = outputs["pred_logits"]
        if logits.shape[-1] != self.num_classes:
            raise ValueError(
                f"pred_logits has {logits.shape[-1]} classes but num_classes={self.num_classes}"
            )
        if len(targets) != logits.shape[0]:
            raise ValueError(f"{len(targets)} targets for a batch of {logits.shape[0]} images")
        if len(outputs["aux_outputs"]) != self.dec_layers - 1:
            raise ValueError(
                f"outputs have {len(outputs['aux_outputs'])} aux outputs; "
                f"dec_layers={self.dec_layers} needs {self.dec_layers - 1}"
            )
        labels = torch.cat([t["labels"].reshape(-1) for t in targets])
        if labels.numel() == 0:
            return
        low, high = torch.stack([labels.min(), labels.max()]).tolist()  # one device sync
        if low < 0 or high >= self.num_classes:
            raise ValueError(
                f"target labels span {low}..{high} but num_classes={self.num_classes} "
                "(it must be the max category id + 1; ids are used raw)"
            )

    def forward(
        self,
        outputs: dict[str, Any],
        targets: list[dict[str, Tensor]],
        num_boxes: float | None = None,
    ) -> dict[str, Tensor]:
        """Compute every loss and the logging values.

        outputs: `pred_logits` [B, Q, C], `pred_boxes` [B, Q, 4] normalised cxcywh,
        `aux_outputs` (dec_layers - 1 dicts of the same two keys), `interm_outputs` (same keys,
        any number of proposals), `dn_meta` (absent/None, or the official dn layout).
        targets: B dicts with `labels` int64 [n_b] (raw ids < C) and `boxes` [n_b, 4] normalised
        cxcywh; n_b may be 0. num_boxes: the loss normaliser; None counts the boxes of `targets`.
        The engine passes the box count of the whole optimizer step (all micro-batches and ranks)
        divided by the world size (DDP averages gradients; see the module docstring).
        A counted normaliser is clamped to >= 1, so a batch without boxes gives finite losses; a
        given one is used as it is (it must be > 0): the engine's is floored before the division
        by the world size, and clamping it again would undo that (0.5 on 2 ranks for a step
        without boxes).
        Returns 0-dim tensors: the weighted loss keys (module docstring) plus class_error and
        class_error_images.
        """
        self._check_inputs(outputs, targets)
        if num_boxes is None:
            num_boxes = max(float(sum(t["labels"].numel() for t in targets)), 1.0)
        elif not num_boxes > 0:
            raise ValueError(f"num_boxes must be > 0 (the loss normaliser), got {num_boxes}")
        num_boxes = float(num_boxes)

        indices = self.matcher(outputs, targets)
        losses = self.layer_losses(outputs, targets, indices, num_boxes, "")
        for i, aux in enumerate(outputs["aux_outputs"]):
            aux_indices = self.matcher(aux, targets)
            losses.update(self.layer_losses(aux, targets, aux_indices, num_boxes, f"_{i}"))
        interm = outputs["interm_outputs"]
        interm_indices = self.matcher(interm, targets)
        losses.update(self.layer_losses(interm, targets, interm_indices, num_boxes, "_interm"))
        device = outputs["pred_logits"].device
        losses.update(self.dn_losses(outputs.get("dn_meta"), targets, num_boxes, device))
        losses.update(self.class_error(outputs, targets, indices))
        return losses
