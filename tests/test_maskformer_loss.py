"""Mask2Former criterion: matching, optimisation, empty batches, aux keys and 1/4-resolution predictions."""

from __future__ import annotations

import math

import pytest
import torch
from focoos.training.losses.maskformer import MaskFormerCriterion
from torch.nn import functional as F

NUM_CLASSES = 3


def _blob(height: int, width: int, cy: float, cx: float, radius: float) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return ((ys - cy) ** 2 + (xs - cx) ** 2 <= radius**2).to(torch.uint8)


def _targets(height: int = 64, width: int = 64) -> dict:
    masks = torch.stack([_blob(height, width, 16, 16, 10), _blob(height, width, 44, 40, 14),
                         _blob(height, width, 14, 48, 8)])
    return {"labels": torch.tensor([2, 0, 1]), "masks": masks}


def _scalar_finite(losses: dict[str, torch.Tensor]) -> bool:
    return all(v.dim() == 0 and math.isfinite(v.item()) for v in losses.values())


def test_matcher_finds_identity_when_predictions_are_the_targets() -> None:
    target = _targets()
    # Query i predicts target i; the last query is a no-object query with an unrelated mask.
    low = F.avg_pool2d(target["masks"].float().unsqueeze(0), 4)[0]  # [3, 16, 16]
    extra = torch.zeros(1, 16, 16)
    extra[:, 12:, :4] = 1
    masks = (torch.cat([low, extra]) > 0.5).float() * 20 - 10
    logits = torch.full((4, NUM_CLASSES + 1), -5.0)
    logits[torch.arange(3), target["labels"]] = 5.0
    logits[3, NUM_CLASSES] = 5.0
    criterion = MaskFormerCriterion(NUM_CLASSES, num_points=512)
    [(rows, cols)] = criterion.matcher(logits[None], masks[None], [target])
    assert rows.tolist() == [0, 1, 2]
    assert cols.tolist() == [0, 1, 2]

    # A permutation of the queries is followed by the assignment.
    perm = torch.tensor([2, 3, 0, 1])
    [(rows, cols)] = criterion.matcher(logits[perm][None], masks[perm][None], [target])
    assignment = dict(zip(rows.tolist(), cols.tolist(), strict=True))
    assert assignment == {2: 0, 3: 1, 0: 2}


def test_loss_decreases_when_optimising_toward_two_blobs() -> None:
    torch.manual_seed(0)
    height = width = 64
    masks = torch.stack([_blob(height, width, 20, 20, 12), _blob(height, width, 42, 44, 10)]).bool()
    targets = [{"labels": torch.tensor([0, 2]), "masks": masks}]
    logits = torch.randn(1, 5, NUM_CLASSES + 1, requires_grad=True)
    pred_masks = torch.randn(1, 5, height // 4, width // 4, requires_grad=True)
    criterion = MaskFormerCriterion(NUM_CLASSES, num_points=256)
    optimiser = torch.optim.Adam([logits, pred_masks], lr=0.1)
    totals = []
    for _ in range(30):
        losses = criterion({"pred_logits": logits, "pred_masks": pred_masks, "aux_outputs": []}, targets, 2)
        total = sum(losses.values())
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        totals.append(total.item())
    assert sum(totals[-3:]) < 0.7 * sum(totals[:3])  # about 0.35-0.5 across seeds


def test_empty_targets_give_finite_losses_with_gradients() -> None:
    logits = torch.randn(2, 4, NUM_CLASSES + 1, requires_grad=True)
    pred_masks = torch.randn(2, 4, 8, 8, requires_grad=True)
    empty = {"labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 32, 32, dtype=torch.uint8)}
    criterion = MaskFormerCriterion(NUM_CLASSES, num_points=64)
    losses = criterion({"pred_logits": logits, "pred_masks": pred_masks}, [empty, empty], 0)
    assert set(losses) == {"loss_ce", "loss_mask", "loss_dice"}
    assert _scalar_finite(losses)
    assert losses["loss_mask"].item() == 0.0 and losses["loss_dice"].item() == 0.0
    sum(losses.values()).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert pred_masks.grad is not None and torch.isfinite(pred_masks.grad).all()


def test_aux_outputs_produce_suffixed_keys() -> None:
    def layer() -> dict:
        return {"pred_logits": torch.randn(1, 4, NUM_CLASSES + 1), "pred_masks": torch.randn(1, 4, 16, 16)}

    outputs = layer() | {"aux_outputs": [layer(), layer()]}
    losses = MaskFormerCriterion(NUM_CLASSES, num_points=64)(outputs, [_targets()], 3)
    names = {"loss_ce", "loss_mask", "loss_dice"}
    assert set(losses) == names | {f"{n}_{i}" for n in names for i in (0, 1)}
    assert _scalar_finite(losses)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.bool, torch.float32])
def test_quarter_resolution_predictions_and_mixed_batch(dtype: torch.dtype) -> None:
    height, width = 48, 80
    full = _targets(height, width)
    empty = {"labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, height, width, dtype=dtype)}
    targets = [{"labels": full["labels"], "masks": full["masks"].to(dtype)}, empty]
    logits = torch.randn(2, 6, NUM_CLASSES + 1, requires_grad=True)
    pred_masks = torch.randn(2, 6, height // 4, width // 4, requires_grad=True)
    criterion = MaskFormerCriterion(NUM_CLASSES, num_points=128)
    losses = criterion({"pred_logits": logits, "pred_masks": pred_masks, "aux_outputs": []}, targets, 3)
    assert set(losses) == {"loss_ce", "loss_mask", "loss_dice"}
    assert _scalar_finite(losses)
    assert losses["loss_mask"].item() > 0 and losses["loss_dice"].item() > 0
    sum(losses.values()).backward()
    assert pred_masks.grad[0].abs().sum() > 0  # matched image's queries get mask gradients
    assert pred_masks.grad[1].abs().sum() == 0  # empty image: only the class loss
