"""Optimizer, parameter groups and learning-rate schedule, by Focoos' rules (see TrainerArgs' docstring).

The schedule is torch's LambdaLR over one factor function of the finished-step count (`lr_factor`), each
group's lr being its base lr times that factor. torch's built-in schedulers cannot give Focoos' curves
exactly: Focoos multiplies its warmup into the main curve (SequentialLR switches from one to the next instead),
ChainedScheduler multiplies recursively from the last lr (rounding drifts from the closed form), and
quadratic warmup and POLY's constant_ending have no built-in.
"""

from __future__ import annotations

import inspect
import math
from bisect import bisect_right
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from focoos.errors import FocoosError
from focoos.ports import OptimizerName, Scheduler, TrainerArgs

OPTIMIZERS: dict[OptimizerName, type[torch.optim.Optimizer]] = {
    OptimizerName.ADAMW: torch.optim.AdamW,
    OptimizerName.SGD: torch.optim.SGD,
    OptimizerName.RMSPROP: torch.optim.RMSprop,
}
# Norm layers, whose weights decay by weight_decay_norm (_NormBase covers batch, sync-batch and instance norms).
NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
OWN_WARMUP_FACTOR = 0.001  # where TrainerArgs.warmup_iters starts


def hyperparameters(module_name: str, param_name: str, module: nn.Module, args: TrainerArgs) -> tuple[float, float]:
    """(lr multiplier, weight decay) of one parameter, from its module's path and type."""
    multiplier, decay = 1.0, args.weight_decay
    if "backbone" in module_name:
        multiplier *= args.backbone_multiplier
    if "pixel_decoder" in module_name:
        multiplier *= args.decoder_multiplier
    if "head" in module_name and "classifier" not in module_name:
        multiplier *= args.head_multiplier
    if multiplier == 0:
        decay = 0.0  # a frozen part must not shrink either
    if isinstance(module, NORM_TYPES):
        decay = args.weight_decay_norm
    if isinstance(module, nn.Embedding) or "pos_embed" in param_name:
        decay = args.weight_decay_embed
    if "relative_position_bias_table" in param_name:
        decay = 0.0
    return multiplier, decay


def param_groups(network: nn.Module, args: TrainerArgs) -> list[dict[str, Any]]:
    """One optimizer group per (lr multiplier, weight decay); each trainable parameter counted once."""
    grouped: dict[tuple[float, float], list[nn.Parameter]] = {}
    seen: set[int] = set()
    for module_name, module in network.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            grouped.setdefault(hyperparameters(module_name, param_name, module, args), []).append(param)
    return [
        {"params": params, "lr": args.learning_rate * multiplier, "weight_decay": decay}
        for (multiplier, decay), params in grouped.items()
    ]


def build_optimizer(network: nn.Module, args: TrainerArgs) -> torch.optim.Optimizer:
    """The named torch optimizer over Focoos' parameter groups, with optimizer_extra as its keyword arguments."""
    optimizer_class = OPTIMIZERS[args.optimizer]
    extra = dict(args.optimizer_extra or {})
    reserved = sorted({"params", "lr", "weight_decay"} & set(extra))
    if reserved:
        raise FocoosError(f"optimizer_extra cannot set {', '.join(reserved)}: use TrainerArgs.learning_rate and "
                          "weight_decay (and the multipliers)")
    accepted = set(inspect.signature(optimizer_class).parameters)
    unknown = sorted(set(extra) - accepted)
    if unknown:
        raise FocoosError(f"optimizer_extra: {', '.join(unknown)} not an option of torch.optim."
                          f"{optimizer_class.__name__} (it takes {', '.join(sorted(accepted - {'params'}))})")
    try:
        return optimizer_class(param_groups(network, args), lr=args.learning_rate, weight_decay=args.weight_decay,
                               **extra)
    except (TypeError, ValueError) as exc:
        raise FocoosError(f"optimizer_extra {extra} rejected by torch.optim.{optimizer_class.__name__}: {exc}") from exc


def schedule_options(args: TrainerArgs) -> dict[str, Any]:
    """scheduler_extra, over our warmup_iters shorthand."""
    own = {"warmup_iters": args.warmup_iters, "warmup_factor": OWN_WARMUP_FACTOR} if args.warmup_iters else {}
    return {**own, **(args.scheduler_extra or {})}


def warmup_factor(options: dict[str, Any], iteration: int) -> float:
    """From warmup_factor up to 1 over warmup_iters steps: constant, linear or quadratic."""
    steps = int(options.get("warmup_iters", 0))
    if iteration >= steps:
        return 1.0
    start = float(options.get("warmup_factor", 1.0))
    method = options.get("warmup_method", "linear")
    if method == "constant":
        return start
    alpha = iteration / steps if method == "linear" else (iteration / steps) ** 2
    return start * (1 - alpha) + alpha


def lr_factor(args: TrainerArgs, iteration: int) -> float:
    """Multiplier of each group's base lr at `iteration` finished steps."""
    options = schedule_options(args)
    warmup = warmup_factor(options, iteration)
    progress = iteration / args.max_iters
    if args.scheduler == Scheduler.MULTISTEP:
        milestones = [int(m * args.max_iters) for m in options.get("milestones", [])]  # fractions of max_iters
        return warmup * float(options.get("gamma", 0.1)) ** bisect_right(milestones, iteration)
    if args.scheduler == Scheduler.COSINE:
        return warmup * 0.5 * (1.0 + math.cos(math.pi * progress))
    if args.scheduler == Scheduler.POLY:
        decay = max(0.0, 1.0 - progress) ** float(options.get("power", 0.9))
        ending = float(options.get("constant_ending", 0.0))
        if ending > 0 and warmup == 1.0 and decay < ending:
            return ending
        return warmup * decay
    return warmup  # FIXED


def build_scheduler(optimizer: torch.optim.Optimizer, args: TrainerArgs) -> LambdaLR:
    """Sets each group's lr to its base lr times lr_factor now and after every step (scheduler.step())."""
    return LambdaLR(optimizer, partial(lr_factor, args))  # a partial: its state_dict holds no TrainerArgs
