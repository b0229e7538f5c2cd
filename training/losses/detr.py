"""DETR set criterion: Hungarian matching (scipy), varifocal class loss, L1 + GIoU box losses.

Applied to the last decoder layer, every auxiliary layer and the encoder's top-k proposals
(RT-DETR). Boxes are cxcywh normalised to the input; targets arrive as xyxy pixels of the
(augmented) input image and are normalised here.
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.ops import box_convert, box_iou, generalized_box_iou

WEIGHTS = {"loss_vfl": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0}


class HungarianMatcher(nn.Module):
    """One-to-one assignment of queries to targets minimising focal class + L1 + GIoU cost."""

    def __init__(self, cost_class: float = 2.0, cost_bbox: float = 5.0, cost_giou: float = 2.0) -> None:
        super().__init__()
        self.cost_class, self.cost_bbox, self.cost_giou = cost_class, cost_bbox, cost_giou

    @torch.no_grad()
    def forward(self, logits: Tensor, boxes: Tensor, targets: list[dict]) -> list[tuple[Tensor, Tensor]]:
        """logits [B,Q,C], boxes [B,Q,4] cxcywh; targets: normalised cxcywh `boxes` and `labels` per image."""
        prob = logits.sigmoid()  # [B, Q, C]
        indices = []
        for b, target in enumerate(targets):
            if target["labels"].numel() == 0:
                empty = torch.empty(0, dtype=torch.int64)
                indices.append((empty, empty))
                continue
            p = prob[b][:, target["labels"]]  # [Q, T]
            alpha, gamma = 0.25, 2.0
            pos = alpha * (1 - p) ** gamma * -(p + 1e-8).log()
            neg = (1 - alpha) * p**gamma * -(1 - p + 1e-8).log()
            cost_class = pos - neg
            cost_bbox = torch.cdist(boxes[b], target["boxes"], p=1)  # [Q, T]
            cost_giou = -generalized_box_iou(
                box_convert(boxes[b], "cxcywh", "xyxy"), box_convert(target["boxes"], "cxcywh", "xyxy")
            )
            cost = self.cost_class * cost_class + self.cost_bbox * cost_bbox + self.cost_giou * cost_giou
            rows, cols = linear_sum_assignment(cost.float().cpu().numpy())
            indices.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return indices


def varifocal_loss(logits: Tensor, labels_onehot: Tensor, iou_target: Tensor, num_boxes: float,
                   alpha: float = 0.75, gamma: float = 2.0) -> Tensor:
    """Varifocal loss: positives are weighted by their IoU, negatives down-weighted focally."""
    prob = logits.sigmoid().detach()
    target = labels_onehot * iou_target.unsqueeze(-1)  # [B, Q, C]
    weight = alpha * prob.pow(gamma) * (1 - labels_onehot) + target
    loss = F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction="none")
    return loss.mean(1).sum() * logits.shape[1] / num_boxes


class DetrCriterion(nn.Module):
    def __init__(self, num_classes: int, weights: dict[str, float] | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.matcher = HungarianMatcher()
        self.weights = weights or dict(WEIGHTS)

    @classmethod
    def from_config(cls, num_classes: int, config: dict) -> DetrCriterion:
        """The criterion every family names in its spec is built the same way."""
        return cls(num_classes)

    @staticmethod
    def normalise_targets(targets: list[dict], image_hw: tuple[int, int]) -> list[dict]:
        """xyxy pixels of the input image -> cxcywh in 0..1."""
        height, width = image_hw
        scale = torch.tensor([width, height, width, height], dtype=torch.float32)
        return [
            {"labels": t["labels"], "boxes": box_convert(t["boxes"].float() / scale, "xyxy", "cxcywh")}
            for t in targets
        ]

    def _layer_losses(self, logits: Tensor, boxes: Tensor, targets: list[dict], num_boxes: float) -> dict[str, Tensor]:
        indices = self.matcher(logits, boxes, targets)
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
        query_idx = torch.cat([src for src, _ in indices])
        matched = boxes[batch_idx, query_idx]  # [M, 4]
        target_boxes = torch.cat([t["boxes"][tgt] for t, (_, tgt) in zip(targets, indices, strict=True)])
        target_labels = torch.cat([t["labels"][tgt] for t, (_, tgt) in zip(targets, indices, strict=True)])

        onehot = torch.zeros_like(logits)
        iou = torch.zeros(logits.shape[:2], dtype=logits.dtype, device=logits.device)
        if matched.numel():
            matched_xyxy = box_convert(matched, "cxcywh", "xyxy")
            target_xyxy = box_convert(target_boxes, "cxcywh", "xyxy")
            onehot[batch_idx, query_idx, target_labels] = 1.0
            iou[batch_idx, query_idx] = torch.diag(box_iou(matched_xyxy.detach(), target_xyxy)).to(iou.dtype)
            loss_bbox = F.l1_loss(matched, target_boxes, reduction="sum") / num_boxes
            loss_giou = (1 - torch.diag(generalized_box_iou(matched_xyxy, target_xyxy))).sum() / num_boxes
        else:
            loss_bbox = loss_giou = boxes.sum() * 0.0
        return {
            "loss_vfl": varifocal_loss(logits, onehot, iou, num_boxes),
            "loss_bbox": loss_bbox,
            "loss_giou": loss_giou,
        }

    def forward(self, outputs: dict, targets: list[dict], num_boxes: float) -> dict[str, Tensor]:
        """Weighted losses of every supervised layer; `num_boxes` is the (all-reduced) target count."""
        num_boxes = max(float(num_boxes), 1.0)
        layers = [("", outputs)]
        layers += [(f"_aux{i}", aux) for i, aux in enumerate(outputs.get("aux_outputs", []))]
        if "enc_outputs" in outputs:
            layers.append(("_enc", outputs["enc_outputs"]))
        losses: dict[str, Tensor] = {}
        for suffix, out in layers:
            for name, value in self._layer_losses(out["pred_logits"], out["pred_boxes"], targets, num_boxes).items():
                losses[name + suffix] = value * self.weights[name]
        return losses
