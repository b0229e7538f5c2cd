"""Mask2Former set criterion: Hungarian matching (scipy), cross-entropy class loss, point-sampled BCE + dice.

Shared by instance and semantic segmentation (fai_mf and bisenetformer), with Focoos' config keys
(`from_config`). It consumes the networks' training outputs: {"pred_logits" [B, Q, C+1] raw,
"pred_masks" [B, Q, h, w] raw mask logits, "aux_outputs": the same per earlier decoder layer}.
Predicted masks are 1/4 of the input resolution while target masks are at full resolution; both are
read at the same [0, 1] point coordinates with `grid_sample`, so no upsampling is needed and memory
stays proportional to `num_points` rather than to the image size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torch.nn import functional as F

from focoos.models.layers import MASKFORMER_DEFAULTS

WEIGHTS = {"loss_ce": 2.0, "loss_mask": 5.0, "loss_dice": 5.0}
DEFAULT_NUM_POINTS = 12544


def point_sample(masks: Tensor, coords: Tensor) -> Tensor:
    """masks [N, C, H, W], coords [N, P, 2] as (x, y) in [0, 1] -> [N, C, P], bilinear."""
    grid = (2.0 * coords - 1.0).unsqueeze(2)  # [N, P, 1, 2] in grid_sample's [-1, 1]
    return F.grid_sample(masks, grid, align_corners=False).squeeze(3)


def _float_masks(masks: Tensor, device: torch.device) -> Tensor:
    """bool/uint8/float targets -> float on `device`; integer masks count any non-zero pixel as foreground."""
    masks = masks.to(device)
    return masks.float() if masks.is_floating_point() else (masks != 0).float()


def uncertainty(logits: Tensor) -> Tensor:
    """Points whose logit is closest to 0 are the least certain."""
    return -logits.abs()


def uncertain_point_coords(logits: Tensor, uncertainty_fn: Callable[[Tensor], Tensor], num_points: int,
                           oversample_ratio: float, importance_sample_ratio: float) -> Tensor:
    """logits [N, 1, h, w] -> coords [N, num_points, 2]: mostly the most uncertain of an oversampled set,
    the rest uniform so that confidently wrong regions still get supervised."""
    n = logits.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    coords = torch.rand(n, num_sampled, 2, device=logits.device)
    scores = uncertainty_fn(point_sample(logits, coords))[:, 0]  # [N, num_sampled]
    num_uncertain = int(importance_sample_ratio * num_points)
    idx = torch.topk(scores, k=num_uncertain, dim=1).indices  # [N, num_uncertain]
    coords = torch.gather(coords, 1, idx.unsqueeze(-1).expand(-1, -1, 2))
    num_random = num_points - num_uncertain
    if num_random > 0:
        coords = torch.cat([coords, torch.rand(n, num_random, 2, device=logits.device)], dim=1)
    return coords


def batch_sigmoid_ce(inputs: Tensor, targets: Tensor) -> Tensor:
    """Pairwise mean BCE: inputs [Q, P] logits, targets [T, P] -> [Q, T]."""
    pos = F.binary_cross_entropy_with_logits(inputs, torch.ones_like(inputs), reduction="none")
    neg = F.binary_cross_entropy_with_logits(inputs, torch.zeros_like(inputs), reduction="none")
    return (pos @ targets.T + neg @ (1 - targets).T) / inputs.shape[1]


def batch_dice(inputs: Tensor, targets: Tensor) -> Tensor:
    """Pairwise dice loss: inputs [Q, P] logits, targets [T, P] -> [Q, T]."""
    inputs = inputs.sigmoid()
    numerator = 2 * inputs @ targets.T
    denominator = inputs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


def sigmoid_ce_loss(inputs: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """Per-mask mean BCE over points, summed over masks and normalised by the batch mask count."""
    return F.binary_cross_entropy_with_logits(inputs, targets, reduction="none").mean(1).sum() / num_masks


def dice_loss(inputs: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    inputs = inputs.sigmoid()
    numerator = 2 * (inputs * targets).sum(-1)
    denominator = inputs.sum(-1) + targets.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).sum() / num_masks


class HungarianMatcher(nn.Module):
    """One-to-one assignment of queries to targets minimising class + mask BCE + dice cost."""

    def __init__(self, cost_class: float = 2.0, cost_mask: float = 5.0, cost_dice: float = 5.0,
                 num_points: int = DEFAULT_NUM_POINTS, cls_sigmoid: bool = False) -> None:
        super().__init__()
        self.cost_class, self.cost_mask, self.cost_dice = cost_class, cost_mask, cost_dice
        self.num_points, self.cls_sigmoid = num_points, cls_sigmoid

    @torch.no_grad()
    def forward(self, logits: Tensor, masks: Tensor, targets: list[dict]) -> list[tuple[Tensor, Tensor]]:
        """logits [B, Q, C+1], masks [B, Q, h, w]; returns (query indices, target indices) per image."""
        indices = []
        for b, target in enumerate(targets):
            labels = target["labels"].to(logits.device)
            if labels.numel() == 0:
                empty = torch.empty(0, dtype=torch.int64)
                indices.append((empty, empty))
                continue
            probs = logits[b].float().sigmoid() if self.cls_sigmoid else logits[b].float().softmax(-1)
            cost_class = -probs[:, labels]  # [Q, T]
            # The same uniform points for every prediction and target, as in Mask2Former.
            coords = torch.rand(1, self.num_points, 2, device=masks.device)
            out_pts = point_sample(masks[b].float().unsqueeze(0), coords)[0]  # [Q, P]
            tgt_pts = point_sample(_float_masks(target["masks"], masks.device).unsqueeze(0), coords)[0]  # [T, P]
            cost = (self.cost_class * cost_class + self.cost_mask * batch_sigmoid_ce(out_pts, tgt_pts)
                    + self.cost_dice * batch_dice(out_pts, tgt_pts))
            rows, cols = linear_sum_assignment(cost.float().cpu().numpy())
            indices.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return indices


class MaskFormerCriterion(nn.Module):
    """Set loss over the last layer and (deep supervision) every aux layer.

    Class loss: cross-entropy over C+1 with "no object" weighted eos_coef, or with cls_sigmoid a per-class
    BCE over the C real classes (the last logit unused), normalised by the mask count as in Focoos.
    """

    def __init__(self, num_classes: int, num_points: int = DEFAULT_NUM_POINTS, oversample_ratio: float = 3.0,
                 importance_sample_ratio: float = 0.75, eos_coef: float = 0.1, cost_class: float = 2.0,
                 cost_mask: float = 5.0, cost_dice: float = 5.0, weights: dict[str, float] | None = None,
                 cls_sigmoid: bool = False, deep_supervision: bool = True) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.cls_sigmoid, self.deep_supervision = cls_sigmoid, deep_supervision
        self.matcher = HungarianMatcher(cost_class, cost_mask, cost_dice, num_points, cls_sigmoid)
        self.weights = weights or dict(WEIGHTS)
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = eos_coef  # "no object" dominates the queries; down-weight it
        self.register_buffer("empty_weight", empty_weight, persistent=False)

    @classmethod
    def from_config(cls, num_classes: int, config: dict) -> MaskFormerCriterion:
        """The criterion a Focoos MaskFormer/BisenetFormer config asks for (Focoos' defaults for absent keys).

        `train_num_points` (ours) overrides `criterion_num_points`: fewer points make CPU training affordable.
        """
        get = {**MASKFORMER_DEFAULTS, **config}.get
        return cls(
            num_classes,
            num_points=int(get("train_num_points", get("criterion_num_points", DEFAULT_NUM_POINTS))),
            eos_coef=float(get("criterion_eos_coef")),
            cost_class=float(get("matcher_cost_class", 2)), cost_mask=float(get("matcher_cost_mask", 5)),
            cost_dice=float(get("matcher_cost_dice", 5)),
            weights={"loss_ce": float(get("weight_dict_loss_ce", 2)),
                     "loss_mask": float(get("weight_dict_loss_mask", 5)),
                     "loss_dice": float(get("weight_dict_loss_dice", 5))},
            cls_sigmoid=bool(get("cls_sigmoid")),
            deep_supervision=bool(get("criterion_deep_supervision", True)),
        )  # fmt: skip

    def _layer_losses(self, logits: Tensor, masks: Tensor, targets: list[dict], num_masks: float) -> dict[str, Tensor]:
        indices = self.matcher(logits, masks, targets)
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)]).to(logits.device)
        query_idx = torch.cat([src for src, _ in indices]).to(logits.device)

        target_classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device)
        target_classes[batch_idx, query_idx] = torch.cat(
            [t["labels"].to(logits.device)[tgt] for t, (_, tgt) in zip(targets, indices, strict=True)]
        )
        if self.cls_sigmoid:
            onehot = F.one_hot(target_classes, self.num_classes + 1)[..., :-1].float()  # "no object" = all zero
            bce = F.binary_cross_entropy_with_logits(logits.float()[..., : self.num_classes], onehot, reduction="none")
            loss_ce = bce.mean(1).sum() * logits.shape[1] / num_masks
        else:
            loss_ce = F.cross_entropy(logits.float().transpose(1, 2), target_classes,
                                      weight=self.empty_weight.to(logits.device))

        if query_idx.numel() == 0:
            zero = masks.sum() * 0.0  # keeps the graph connected so every rank's backward matches
            return {"loss_ce": loss_ce, "loss_mask": zero, "loss_dice": zero}

        src = masks[batch_idx, query_idx].float().unsqueeze(1)  # [M, 1, h, w]
        with torch.no_grad():
            coords = uncertain_point_coords(src, uncertainty, self.num_points, self.oversample_ratio,
                                            self.importance_sample_ratio)  # [M, P, 2]
            # Targets may differ in size per image, so each image's masks are sampled on their own.
            labels_pts, start = [], 0
            for t, (_, tgt) in zip(targets, indices, strict=True):
                if tgt.numel() == 0:
                    continue
                tgt_masks = _float_masks(t["masks"][tgt.to(t["masks"].device)], masks.device).unsqueeze(1)
                labels_pts.append(point_sample(tgt_masks, coords[start:start + tgt.numel()])[:, 0])
                start += tgt.numel()
            point_labels = torch.cat(labels_pts)  # [M, P]
        point_logits = point_sample(src, coords)[:, 0]  # [M, P]
        return {
            "loss_ce": loss_ce,
            "loss_mask": sigmoid_ce_loss(point_logits, point_labels, num_masks),
            "loss_dice": dice_loss(point_logits, point_labels, num_masks),
        }

    def forward(self, outputs: dict, targets: list[dict], num_masks: float) -> dict[str, Tensor]:
        """Weighted losses of the last layer and of each aux layer (suffixed `_i`); `num_masks` is all-reduced."""
        num_masks = max(float(num_masks), 1.0)
        aux_outputs = (outputs.get("aux_outputs") or []) if self.deep_supervision else []
        layers = [("", outputs)] + [(f"_{i}", aux) for i, aux in enumerate(aux_outputs)]
        losses: dict[str, Tensor] = {}
        for suffix, out in layers:
            for name, value in self._layer_losses(out["pred_logits"], out["pred_masks"], targets, num_masks).items():
                losses[name + suffix] = value * self.weights[name]
        return losses
