"""RTMO's training losses: SimOTA assignment of priors to people, then box, OKS, visibility, DCC and score terms.

What Focoos' RTMOHead.losses computes, with its weights: each ground-truth person gets the dynamic-k
priors of lowest cost (box IoU, keypoint OKS and classification, only priors inside both its box and
its centre region), k = the summed OKS of its 10 best candidates. The positives learn their box
(1 - IoU^2, x5), their regressed keypoints (1 - OKS, x30), keypoint visibility (BCE), and the DCC
heatmaps (MLE of a Laplacian around each visible keypoint, with the DCC's learned sigma); every prior
learns its score by varifocal loss towards OKS^overlaps_power on positives and 0 elsewhere.

Coordinates are input pixels. An object's OKS scale is its (augmented) box area: Focoos passes the
annotation's area from the file, which augmentation does not rescale.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_iou

from focoos.data.coco_eval import keypoint_sigmas
from focoos.models.rtmo.modelling import DEFAULTS, bbox_xyxy_to_cs

# Focoos' loss weights (KeypointCriterion) and assigner settings (SimOTAAssigner as RTMOHead builds it).
LOSS_WEIGHTS = {"loss_bbox": 5.0, "loss_vis": 1.0, "loss_mle": 1.0, "loss_oks": 30.0, "loss_cls": 1.0}
CENTER_RADIUS = 2.5  # in strides around the object's centre
CANDIDATE_TOPK = 10
COST_WEIGHTS = {"iou": 3.0, "oks": 3.0, "cls": 1.0}
VARIFOCAL_ALPHA, VARIFOCAL_GAMMA = 0.75, 2.0
INF, EPS = 1e5, 1e-7


def pairwise_oks(pred: Tensor, target: Tensor, weights: Tensor, areas: Tensor, sigmas: Tensor) -> Tensor:
    """OKS of keypoints pred [..., K, 2] against target [..., K, 2] (broadcast), visibility-weighted mean over K.

    areas [...] is each target's scale^2; sigmas [K] the per-keypoint falloff. Objects without a
    visible keypoint score 0.
    """
    dist = torch.linalg.vector_norm(pred - target, dim=-1) / areas[..., None].clamp(min=EPS).sqrt()
    similarity = torch.exp(-((dist / (2 * sigmas)) ** 2) / 2)
    weights = weights / weights.sum(-1, keepdim=True).clamp(min=EPS)
    return (similarity * weights).sum(-1)


def aligned_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU of each xyxy box with its counterpart, [N]."""
    lt, rb = torch.maximum(boxes1[:, :2], boxes2[:, :2]), torch.minimum(boxes1[:, 2:], boxes2[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area1, area2 = (boxes1[:, 2:] - boxes1[:, :2]).prod(-1), (boxes2[:, 2:] - boxes2[:, :2]).prod(-1)
    return inter / (area1 + area2 - inter).clamp(min=EPS)


def varifocal_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Summed varifocal loss: BCE towards a soft target, negatives down-weighted by alpha * p^gamma."""
    positive = (target > 1e-4).to(target)
    weight = VARIFOCAL_ALPHA * logits.sigmoid().pow(VARIFOCAL_GAMMA) * (1 - positive) + target
    loss = F.binary_cross_entropy_with_logits(logits.clamp(-10, 10), target, reduction="none") * weight
    return torch.nan_to_num(loss, nan=0.0, posinf=0.0).sum()


class SimOTA:
    """Dynamic-k assignment of priors to ground-truth objects for one image (no gradients)."""

    def __init__(self, sigmas: Tensor, keypoint_centres: bool) -> None:
        self.sigmas = sigmas
        # Focoos centres the candidate region on the visible keypoints' mean for widen_factor 0.5 (the small model).
        self.keypoint_centres = keypoint_centres

    def candidates(self, priors: Tensor, gt: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(priors inside any object's box or centre region [P], inside both per object [V, G])."""
        xy, stride = priors[:, None, :2], priors[:, None, 2:]
        boxes = gt["boxes"]
        in_box = ((xy - boxes[None, :, :2]).min(-1).values > 0) & ((boxes[None, :, 2:] - xy).min(-1).values > 0)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        if self.keypoint_centres:
            visible = gt["visible"]
            counts = visible.sum(-1, keepdim=True)
            mean_xy = (gt["keypoints"] * visible[..., None]).sum(-2) / counts.clamp(min=1)
            centres = torch.where(counts > 0, mean_xy, centres)
        in_centre = ((xy - centres[None]).abs() < CENTER_RADIUS * stride).all(-1)
        valid = in_box.any(1) | in_centre.any(1)
        return valid, (in_box & in_centre)[valid]

    @torch.no_grad()
    def __call__(self, priors: Tensor, pred: dict[str, Tensor], gt: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """(positive mask [P], object index of each positive [F], OKS of each positive [F]).

        pred: "boxes" [P, 4], "scores" [P, C] probabilities, "keypoints" [P, K, 2]; gt: "boxes" [G, 4],
        "labels" [G], "keypoints" [G, K, 2], "visible" [G, K] 0/1, "areas" [G].
        """
        num_priors, num_gt = priors.shape[0], gt["boxes"].shape[0]
        empty = (priors.new_zeros(num_priors, dtype=torch.bool), priors.new_zeros(0, dtype=torch.long),
                 priors.new_zeros(0))
        if num_gt == 0:
            return empty
        valid, in_both = self.candidates(priors, gt)
        if not valid.any():
            return empty
        ious = box_iou(pred["boxes"][valid], gt["boxes"])
        oks = pairwise_oks(pred["keypoints"][valid][:, None], gt["keypoints"][None], gt["visible"][None],
                           gt["areas"][None], self.sigmas)
        scores = pred["scores"][valid].float()[:, None].expand(-1, num_gt, -1)
        onehot = F.one_hot(gt["labels"], scores.shape[-1]).float()[None].expand_as(scores)
        cls_cost = F.binary_cross_entropy(scores, onehot, reduction="none").sum(-1)
        cost = (COST_WEIGHTS["iou"] * -torch.log(ious + EPS) + COST_WEIGHTS["oks"] * -torch.log(oks + EPS)
                + COST_WEIGHTS["cls"] * cls_cost + (~in_both) * INF)
        matching = self.dynamic_k(cost, oks)
        fg = matching.any(1)
        mask = valid.clone()
        mask[valid] = fg
        matched = matching[fg].float().argmax(1)
        return mask, matched, oks[fg].gather(1, matched[:, None])[:, 0]

    @staticmethod
    def dynamic_k(cost: Tensor, quality: Tensor) -> Tensor:
        """bool [V, G]: each object's k cheapest candidates, k = its summed top-10 quality (at least 1);
        a candidate claimed by several objects goes to the cheapest."""
        top = quality.topk(min(CANDIDATE_TOPK, quality.shape[0]), dim=0).values
        ks = top.sum(0).int().clamp(min=1)
        matching = torch.zeros_like(cost, dtype=torch.bool)
        for j, k in enumerate(ks.tolist()):
            matching[cost[:, j].topk(k, largest=False).indices, j] = True
        shared = matching.sum(1) > 1
        if shared.any():
            matching[shared] = F.one_hot(cost[shared].argmin(1), cost.shape[1]).bool()
        return matching


class RTMOCriterion(nn.Module):
    """RTMO's losses from the network's training outputs (a dict, see RTMOHead.forward) and pixel targets.

    Targets: one dict per image with "boxes" [G, 4] xyxy, "labels" [G] and "keypoints" [G, K, 3]
    (x, y, COCO visibility), all in input pixels. Returns Focoos' five loss names, each already weighted.
    """

    def __init__(self, num_classes: int, num_keypoints: int, overlaps_power: float = 0.5,
                 keypoint_centres: bool = False) -> None:
        super().__init__()
        self.num_classes, self.num_keypoints = num_classes, num_keypoints
        self.overlaps_power = overlaps_power
        self.register_buffer("sigmas", torch.as_tensor(keypoint_sigmas(num_keypoints), dtype=torch.float32))
        self.keypoint_centres = keypoint_centres

    @classmethod
    def from_config(cls, num_classes: int, config: dict[str, Any]) -> RTMOCriterion:
        cfg = {**DEFAULTS, **config}
        return cls(num_classes, int(cfg["num_keypoints"]), float(cfg["overlaps_power"]),
                   keypoint_centres=float(cfg["widen_factor"]) == 0.5)

    def _targets(self, outputs: dict[str, Any], targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """Assign every image, then concatenate its positives' targets ([F, ...]) and the score targets [B*P, C]."""
        assigner = SimOTA(self.sigmas.to(outputs["priors"].device), self.keypoint_centres)
        priors = outputs["priors"].detach().float()
        scores = outputs["cls_scores"].detach().float().clamp(-1e4, 1e4).sigmoid().sqrt()  # Focoos: objectness 1
        parts: dict[str, list[Tensor]] = {k: [] for k in ("mask", "boxes", "keypoints", "visible", "areas", "oks",
                                                            "labels", "priors")}
        for i, target in enumerate(targets):
            points = target["keypoints"].float()
            gt = {"boxes": target["boxes"].float(), "labels": target["labels"].long(),
                  "keypoints": points[..., :2], "visible": (points[..., 2] > 0).float()}
            gt["areas"] = (gt["boxes"][:, 2:] - gt["boxes"][:, :2]).prod(-1).clamp(min=1.0)
            pred = {"boxes": outputs["bbox_decoded"][i].detach().float(), "scores": scores[i],
                    "keypoints": outputs["kpt_decoded"][i].detach().float()}
            mask, matched, oks = assigner(priors, pred, gt)
            parts["mask"].append(mask)
            parts["oks"].append(oks)
            parts["priors"].append(priors[mask])
            for key in ("boxes", "keypoints", "visible", "areas", "labels"):
                parts[key].append(gt[key][matched])
        return {key: torch.cat(values) for key, values in parts.items()}

    def _dcc(self, dcc: nn.Module, pose: Tensor, cs: Tensor, grids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """DCC heatmaps and sigmas of the positives; a lone positive is doubled for its batch norm (training
        mode needs two rows), which then centres it to the norm's bias."""
        lone = pose.shape[0] == 1
        if lone:
            pose, cs, grids = pose.repeat(2, 1), cs.repeat(2, 1), grids.repeat(2, 1)
        _, (x_hms, y_hms), sigmas = dcc.forward_train(pose, cs, grids)
        return (x_hms[:1], y_hms[:1], sigmas[:1]) if lone else (x_hms, y_hms, sigmas)

    def forward(self, outputs: dict[str, Any], targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        t = self._targets(outputs, targets)
        cls_logits = outputs["cls_scores"].reshape(-1, self.num_classes)
        num_pos = torch.tensor(float(t["mask"].sum()), device=cls_logits.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(num_pos)
            num_pos = num_pos / torch.distributed.get_world_size()
        normaliser = num_pos.clamp(min=1.0)
        mask = t["mask"]
        boxes = outputs["bbox_decoded"].reshape(-1, 4)[mask]
        keypoints = outputs["kpt_decoded"].reshape(-1, self.num_keypoints, 2)[mask]
        vis_logits = outputs["kpt_vis"].reshape(-1, self.num_keypoints)[mask]
        pose = outputs["pose_vecs"].reshape(-1, outputs["pose_vecs"].shape[-1])[mask]
        score_target = torch.zeros_like(cls_logits)
        losses: dict[str, Tensor] = {}
        if mask.any():
            losses["loss_bbox"] = (1 - aligned_iou(boxes, t["boxes"]).clamp(min=1e-16).pow(2)).sum() / normaliser
            losses["loss_vis"] = F.binary_cross_entropy_with_logits(vis_logits, t["visible"])
            cs = torch.cat(bbox_xyxy_to_cs(boxes), -1)
            x_hms, y_hms, sigmas = self._dcc(outputs["dcc"], pose, cs, t["priors"][:, :2])
            target_x, target_y = outputs["dcc"].generate_target_heatmap(t["keypoints"], cs, sigmas, t["areas"])
            likelihood = (x_hms * target_x).sum(-1) * (y_hms * target_y).sum(-1)
            losses["loss_mle"] = (-torch.log(likelihood + 1e-4) * t["visible"]).mean()
            oks = pairwise_oks(keypoints, t["keypoints"], t["visible"], t["areas"], self.sigmas)
            losses["loss_oks"] = (1 - oks).mean()
            quality = t["oks"].clamp(min=0).pow(self.overlaps_power)
            score_target[mask] = F.one_hot(t["labels"], self.num_classes).to(score_target) * quality[:, None]
        else:  # zero terms that keep every head output in the graph (DDP expects the same parameters each step)
            for name, tensor in (("loss_bbox", boxes), ("loss_vis", vis_logits), ("loss_mle", pose),
                                 ("loss_oks", keypoints)):
                losses[name] = tensor.sum() * 0.0
        losses["loss_cls"] = varifocal_loss(cls_logits, score_target) / normaliser
        return {name: losses[name] * LOSS_WEIGHTS[name] for name in LOSS_WEIGHTS}


__all__ = ["LOSS_WEIGHTS", "RTMOCriterion", "SimOTA", "aligned_iou", "pairwise_oks", "varifocal_loss"]
