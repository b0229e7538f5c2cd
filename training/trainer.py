"""The training loop: iteration based, resumable, the same code for one process and for DDP workers.

Data order is a pure function of (seed, iteration): every iteration's global batch is a fixed
slice of a seeded per-epoch permutation, and each rank takes its stride of it. That is what makes
`resume=True` continue exactly where a killed run stopped, and N workers equal one process with
the same effective batch.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader

from focoos.ports import ArtifactName, ModelInfo, Task, TrainerArgs

from .evaluation import PRIMARY_METRIC, evaluate, finite_metrics, training_device
from .losses import build_criterion
from .previews import save_previews
from .solver import build_optimizer, build_scheduler, lr_factor

logger = logging.getLogger("focoos.training")

LAST_CHECKPOINT = "last_checkpoint"
FINAL_WEIGHTS = ArtifactName.WEIGHTS.value
METRICS_FILE = ArtifactName.METRICS.value
BEST_WEIGHTS = "model_best.pth"


class IterationBatches:
    """Yields the index list of this rank for each iteration from `start`, deterministically.

    The images form an endless stream of seeded per-epoch permutations (Focoos' infinite training sampler):
    iteration i takes the global batch at positions [i * batch_size, (i + 1) * batch_size) of that stream, so a
    batch may span two epochs, and a split smaller than one batch still trains (an image may repeat in a batch).
    """

    def __init__(self, size: int, batch_size: int, seed: int, start: int, rank: int = 0, world: int = 1) -> None:
        if size < 1:
            raise ValueError("the training split has no images")
        self.size, self.batch_size, self.seed, self.start = size, batch_size, seed, start
        self.rank, self.world = rank, world
        self._orders: dict[int, list[int]] = {}

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            self._orders = {e: o for e, o in self._orders.items() if e >= epoch - 1}  # a batch spans <= 2 epochs
            generator = torch.Generator().manual_seed(self.seed + epoch)
            self._orders[epoch] = torch.randperm(self.size, generator=generator).tolist()
        return self._orders[epoch]

    def global_batch(self, iteration: int) -> list[int]:
        first = iteration * self.batch_size
        return [self._order(p // self.size)[p % self.size] for p in range(first, first + self.batch_size)]

    def __iter__(self) -> Iterator[list[int]]:
        iteration = self.start
        while True:
            yield self.global_batch(iteration)[self.rank :: self.world]
            iteration += 1


def focoos_ema(network: nn.Module, decay: float, warmup: int) -> AveragedModel:
    """torch's AveragedModel of the weights and buffers with Focoos' EMA: the k-th update moves the average
    towards the network by 1 - decay * (1 - exp(-k / warmup)); integer buffers (counters) are copied.

    The starting weights count as the first model averaged (n_averaged 1), so update k sees n_averaged = k
    and a checkpoint's "ema_updates" is n_averaged - 1.
    """

    @torch.no_grad()
    def average(averaged: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor) -> None:
        if not averaged[0].is_floating_point():
            torch._foreach_copy_(averaged, current)
            return
        kept = decay * (1 - math.exp(-int(updates) / max(1, warmup)))
        torch._foreach_lerp_(averaged, current, 1 - kept)  # exact for buffers that stay constant

    ema = AveragedModel(network, multi_avg_fn=average, use_buffers=True)
    ema.update_parameters(network)  # the copy AveragedModel makes on its first update
    ema.module.eval().requires_grad_(False)
    return ema


def freeze_batchnorm(network: nn.Module) -> None:
    """Batch norms keep their statistics (eval mode) and affine weights; re-applied after each network.train()."""
    for module in network.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)


def pad_to_multiple(images: torch.Tensor, targets: Any, divisor: int, fill: torch.Tensor | None) -> tuple:
    """Pad the batch at the bottom and right so H and W are multiples of `divisor` (TrainerArgs.size_divisibility).

    Pixels get `fill` (the network's pixel mean, so they normalise to 0 as Focoos' padding does), masks 0 and
    semantic labels the ignore index; boxes, in pixels from the top-left corner, stay as they are.
    """
    from focoos.data import IGNORE_INDEX

    if divisor <= 1:
        return images, targets
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % divisor, -width % divisor
    if not (pad_h or pad_w):
        return images, targets
    padded = images.new_zeros((*images.shape[:-2], height + pad_h, width + pad_w), dtype=torch.float32)
    if fill is not None:
        padded += fill.reshape(1, -1, 1, 1).to(padded)
    padded[..., :height, :width] = images
    if isinstance(targets, list):
        targets = [
            {**t, **{key: nn.functional.pad(t[key], (0, pad_w, 0, pad_h), value=value)
                     for key, value in (("masks", 0), ("sem_seg", IGNORE_INDEX)) if key in t}}
            for t in targets
        ]
    return padded, targets


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class TrainerHook:
    """Callbacks around the loop, run on rank 0 only (the hub sync is one); override what you need."""

    def before_train(self, trainer: Trainer) -> None:
        """Before the first iteration (after a resume)."""

    def after_step(self, trainer: Trainer) -> None:
        """After each optimizer step; `trainer.iteration` counts finished steps."""

    def after_eval(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        """After each validation, with its metrics (already logged to metrics.json)."""

    def after_train(self, trainer: Trainer, error: BaseException | None) -> None:
        """After the loop ends or fails (`error`); model_final.pth is written after this."""


class Trainer:
    """Trains `network` in place; rank 0 writes the run folder."""

    def __init__(
        self,
        network: nn.Module,
        info: ModelInfo,
        args: TrainerArgs,
        data_train: Any,
        data_val: Any | None,
        rank: int = 0,
        world: int = 1,
        hooks: tuple[TrainerHook, ...] = (),
    ) -> None:
        self.info, self.args, self.data_train, self.data_val = info, args, data_train, data_val
        self.rank, self.world = rank, world
        self.hooks = hooks if rank == 0 else ()
        self.output_dir = Path(args.output_dir) / args.run_name
        self.ckpt_dir = Path(args.ckpt_dir) if args.ckpt_dir else self.output_dir
        self.device = training_device(args.device, rank)
        self.network = network.to(self.device).train()
        if args.freeze_bn:
            freeze_batchnorm(self.network)
        self.model = self.network
        if world > 1:
            if self.device.type == "cuda":
                self.network = nn.SyncBatchNorm.convert_sync_batchnorm(self.network)
            self.model = nn.parallel.DistributedDataParallel(
                self.network, device_ids=[rank] if self.device.type == "cuda" else None,
                broadcast_buffers=args.ddp_broadcast_buffers, find_unused_parameters=args.ddp_find_unused,
            )
        self.criterion = build_criterion(info)
        self.optimizer = self._optimizer()
        self.scheduler = build_scheduler(self.optimizer, args)
        self.pixel_mean = getattr(self.network, "pixel_mean", None)
        self.amp = args.amp_enabled and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", init_scale=2.0**10, enabled=self.amp)  # Focoos' first scale
        self.ema = focoos_ema(self.network, args.ema_decay, args.ema_warmup) if args.ema_enabled else None
        self.iteration = 0
        self.best_metric: float | None = None
        self.evals_without_improvement = 0
        self.history: list[dict] = []
        self.losses: dict[str, float] = {}  # the last gathered losses (every gather_metric_period steps)
        self.losses_iteration = 0  # the step they were gathered at

    def _optimizer(self) -> torch.optim.Optimizer:
        return build_optimizer(self.network, self.args)

    def _training_mode(self) -> None:
        """Back to training after an evaluation, with frozen batch norms staying frozen."""
        self.network.train()
        if self.args.freeze_bn:
            freeze_batchnorm(self.network)

    # -- checkpoints
    def _state(self) -> dict:
        return {
            "model": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema else None,
            "ema_updates": int(self.ema.n_averaged) - 1 if self.ema else 0,
            "iteration": self.iteration,
            "best_metric": self.best_metric,
            "evals_without_improvement": self.evals_without_improvement,
            "history": self.history,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        }

    def save_checkpoint(self) -> None:
        if self.rank != 0:
            return
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        name = f"model_{self.iteration:07d}.pth"
        tmp = self.ckpt_dir / f".{name}.tmp"
        torch.save(self._state(), tmp)
        tmp.replace(self.ckpt_dir / name)  # a kill mid-write never leaves a truncated checkpoint
        (self.ckpt_dir / LAST_CHECKPOINT).write_text(name)
        kept = sorted(self.ckpt_dir.glob("model_[0-9]*.pth"))
        for old in kept[: -self.args.checkpointer_max_to_keep]:
            old.unlink()

    def resume(self) -> bool:
        marker = self.ckpt_dir / LAST_CHECKPOINT
        if not marker.is_file():
            return False
        state = torch.load(self.ckpt_dir / marker.read_text().strip(), map_location=self.device, weights_only=False)
        self.network.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema and state["ema"] is not None:
            self.ema.module.load_state_dict(state["ema"])
            self.ema.n_averaged.fill_(state["ema_updates"] + 1)
        self.iteration = state["iteration"]
        if "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        else:  # saved before the schedule had a state: its factor is a function of the iteration alone
            self.scheduler.last_epoch = self.iteration - 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "scheduler.step() before optimizer.step()"
                self.scheduler.step()
        self.best_metric = state["best_metric"]
        self.evals_without_improvement = state["evals_without_improvement"]
        self.history = state["history"]
        if self.rank == 0:  # drop what the killed run logged after its last checkpoint
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / METRICS_FILE).write_text("".join(json.dumps(h) + "\n" for h in self.history))
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        logger.info("resumed from %s at iteration %d", marker.read_text().strip(), self.iteration)
        return True

    # -- loop
    def _loader(self) -> Iterator:
        from focoos.data import collate_classification, collate_detection, collate_segmentation

        collate = {Task.DETECTION: collate_detection, Task.KEYPOINT: collate_detection,
                   Task.CLASSIFICATION: collate_classification}.get(self.info.task, collate_segmentation)
        batches = IterationBatches(len(self.data_train), self.args.batch_size, self.args.seed, self.iteration,
                                   self.rank, self.world)
        loader = DataLoader(self.data_train, batch_sampler=batches, collate_fn=collate,
                            num_workers=self.args.workers, persistent_workers=self.args.workers > 0)
        return iter(loader)

    def _losses(self, images: torch.Tensor, targets: Any) -> dict[str, torch.Tensor]:
        with torch.autocast(self.device.type, enabled=self.amp):
            outputs = self.model(images)
        if self.info.task == Task.CLASSIFICATION:
            return self.criterion(outputs.float(), targets.to(self.device))
        if self.info.task == Task.KEYPOINT:  # pixel targets: the criterion assigns priors to objects itself
            pixel_targets = [{k: t[k].to(self.device) for k in ("boxes", "labels", "keypoints")} for t in targets]
            return self.criterion({k: (v.float() if isinstance(v, torch.Tensor) else v) for k, v in outputs.items()},
                                  pixel_targets)
        if self.info.task == Task.DETECTION:
            normalised = self.criterion.normalise_targets(targets, tuple(images.shape[-2:]))
        else:  # segmentation: per-object (instance) or per-class (semantic) masks at the input size
            normalised = [{"labels": t["labels"], "masks": t["masks"]} for t in targets]
        normalised = [{k: v.to(self.device) for k, v in t.items()} for t in normalised]
        num_boxes = torch.tensor(float(sum(len(t["labels"]) for t in normalised)), device=self.device)
        if self.world > 1:
            torch.distributed.all_reduce(num_boxes)
            num_boxes = num_boxes / self.world  # DDP averages gradients: keep the global normalisation
        outputs = {k: (v.float() if isinstance(v, torch.Tensor) else v) for k, v in outputs.items()}
        return self.criterion(outputs, normalised, num_boxes.item())

    def _gather(self, total: torch.Tensor, losses: dict[str, torch.Tensor]) -> dict[str, float]:
        """The losses as numbers, averaged over the workers; a non-finite total stops the run."""
        values = torch.stack([total, *losses.values()]).detach().float()
        if self.world > 1:
            torch.distributed.all_reduce(values)
            values = values / self.world
        gathered = dict(zip(["total_loss", *losses], values.tolist(), strict=True))
        if not math.isfinite(gathered["total_loss"]):
            raise FloatingPointError(f"loss is {gathered['total_loss']} at iteration {self.iteration}: "
                                     "lower the learning rate")
        return gathered

    def step(self, batch: tuple) -> dict[str, float] | None:
        """One optimizer step; returns the losses on the steps that gather them (gather_metric_period)."""
        images, targets = batch
        images, targets = pad_to_multiple(images, targets, self.args.size_divisibility, self.pixel_mean)
        if self.args.zero_grad_before_forward:
            self.optimizer.zero_grad(set_to_none=True)
        losses = self._losses(images.to(self.device), targets)
        total = torch.stack(list(losses.values())).sum()
        if not self.args.zero_grad_before_forward:
            self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.args.clip_gradients > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.network.parameters(), self.args.clip_gradients)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema:
            self.ema.update_parameters(self.network)
        self.iteration += 1
        if self.iteration % self.args.gather_metric_period:
            return None
        self.losses, self.losses_iteration = self._gather(total, losses), self.iteration
        return self.losses

    def eval_network(self) -> nn.Module:
        return self.ema.module if self.ema else self.network

    def _evaluate(self) -> dict[str, float] | None:
        if self.data_val is None:
            return None
        metrics = finite_metrics(evaluate(self.eval_network(), self.info, self.data_val))
        save_previews(self.eval_network(), self.info, self.data_val, self.args.samples, self.output_dir,
                      self.iteration)
        self._training_mode()
        primary = metrics[PRIMARY_METRIC[self.info.task]]
        if self.best_metric is None or primary > self.best_metric:
            self.best_metric, self.evals_without_improvement = primary, 0
            self.output_dir.mkdir(parents=True, exist_ok=True)
            torch.save(self.eval_network().state_dict(), self.output_dir / BEST_WEIGHTS)
        else:
            self.evals_without_improvement += 1
        return metrics

    def _fresh_losses(self) -> bool:
        """Losses gathered since the last loss record (Focoos' JSON writer writes each value once)."""
        logged = next((h["iteration"] for h in reversed(self.history) if "total_loss" in h), 0)
        return bool(self.losses) and self.losses_iteration > logged

    def _log(self, record: dict) -> None:
        self.history.append(record)
        with (self.output_dir / METRICS_FILE).open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    def run(self) -> dict[str, float] | None:
        """Train to max_iters (or early stop); returns the last validation metrics (rank 0)."""
        seed_everything(self.args.seed + self.rank)
        if self.args.resume:
            self.resume()
        if self.rank == 0:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        for hook in self.hooks:
            hook.before_train(self)
        try:
            metrics = self._loop()
        except BaseException as exc:
            for hook in self.hooks:
                hook.after_train(self, exc)
            raise
        for hook in self.hooks:
            hook.after_train(self, None)
        return metrics

    def _loop(self) -> dict[str, float] | None:
        from tqdm.auto import tqdm

        args = self.args
        loader = self._loader()
        metrics: dict[str, float] | None = None
        bar = tqdm(total=args.max_iters, initial=self.iteration, desc=args.run_name, disable=self.rank != 0)
        start = time.perf_counter()
        while self.iteration < args.max_iters:
            if self.step(next(loader)) is not None:
                bar.set_postfix(loss=f"{self.losses['total_loss']:.3f}")
            bar.update(1)
            for hook in self.hooks:
                hook.after_step(self)
            is_last = self.iteration == args.max_iters
            if self.rank == 0 and (self.iteration % args.log_period == 0 or is_last) and self._fresh_losses():
                self._log({"iteration": self.losses_iteration,
                           "lr": args.learning_rate * lr_factor(args, self.losses_iteration - 1),
                           "time_s": round(time.perf_counter() - start, 2), **self.losses})
            if self.iteration % args.eval_period == 0 or is_last:
                if self.rank == 0:
                    metrics = self._evaluate()
                    if metrics:
                        self._log({"iteration": self.iteration, **metrics})
                        logger.info("iteration %d: %s", self.iteration, metrics)
                        for hook in self.hooks:
                            hook.after_eval(self, metrics)
                if self.world > 1:
                    torch.distributed.barrier()
            if self.iteration % args.checkpointer_period == 0 or is_last:
                self.save_checkpoint()
            if args.early_stop and self.evals_without_improvement >= args.patience:
                logger.info("early stop at iteration %d: no improvement in %d evaluations", self.iteration,
                            args.patience)
                break
        bar.close()
        return metrics

    def final_state_dict(self) -> dict:
        """Best evaluated weights when validation ran, else the last (EMA) weights."""
        best = self.output_dir / BEST_WEIGHTS
        if best.is_file():
            return torch.load(best, map_location="cpu", weights_only=True)
        return {k: v.cpu() for k, v in self.eval_network().state_dict().items()}

    def write_outputs(self, metrics: dict[str, float] | None, dataset_name: str | None) -> ModelInfo:
        """model_final.pth + model_info.json (classes, config, metrics, training args)."""
        torch.save({"model": self.final_state_dict()}, self.output_dir / FINAL_WEIGHTS)  # Focoos' form
        best_metrics = metrics
        evals = [h for h in self.history if PRIMARY_METRIC[self.info.task] in h]
        if evals:
            best_metrics = max(evals, key=lambda h: h[PRIMARY_METRIC[self.info.task]])
            best_metrics = {k: v for k, v in best_metrics.items() if k != "iteration"}
        info = self.info.model_copy(update={
            "val_metrics": best_metrics,
            "val_dataset": dataset_name,
            "train_args": self.args.model_dump(mode="json"),
            "training_info": {"iterations": self.iteration, "train_images": len(self.data_train),
                              "val_images": len(self.data_val) if self.data_val is not None else 0},
            "name": self.args.run_name,  # Focoos: the run names the model it trained
            "weights_uri": str((self.output_dir / FINAL_WEIGHTS).resolve()),  # what ModelInfo.from_json loads
            "status": "TRAINING_COMPLETED",
        })
        info.dump_json(self.output_dir / ArtifactName.INFO.value)
        if self.ckpt_dir != self.output_dir and (self.ckpt_dir / LAST_CHECKPOINT).is_file():
            shutil.copy(self.ckpt_dir / LAST_CHECKPOINT, self.output_dir / LAST_CHECKPOINT)
        return info
