"""TrainerArgs parity with Focoos 0.25: every field and default, Focoos' parameter groups, optimizers and
schedules, and the fields that act on a run (samples, size_divisibility, gather_metric_period,
zero_grad_before_forward, optimizer_extra), plus `evaluate_model` (what FocoosModel.eval runs)."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from focoos.training import evaluate_model
from focoos.training.evaluation import evaluate
from focoos.training.solver import build_optimizer, build_scheduler, lr_factor, param_groups
from focoos.training.trainer import Trainer, focoos_ema, pad_to_multiple
from pydantic import ValidationError

from focoos import DatasetLayout, DatasetSplitType, ModelFamily, ModelInfo, Task, TrainerArgs
from focoos.data import IGNORE_INDEX, AutoDataset, DatasetAugmentations
from focoos.errors import FocoosError
from focoos.models.layers import register_pixel_stats
from tests.conftest import detr_config, mask_config, quiet_get

RESOLUTION = 96
CLASSES = [str(i) for i in range(10)]

# Focoos 0.25 focoos/ports.py TrainerArgs: field -> default (output_dir and num_gpus are checked apart).
FOCOOS_DEFAULTS = {
    "run_name": None, "output_dir": None, "ckpt_dir": None, "init_checkpoint": None, "resume": False,
    "num_gpus": None, "device": "cuda", "workers": 4, "amp_enabled": True, "ddp_broadcast_buffers": False,
    "ddp_find_unused": True, "checkpointer_period": 1000, "checkpointer_max_to_keep": 1, "eval_period": 200,
    "log_period": 20, "samples": 9, "seed": 42, "early_stop": True, "patience": 10, "ema_enabled": False,
    "ema_decay": 0.999, "ema_warmup": 2000, "learning_rate": 5e-4, "weight_decay": 0.02, "max_iters": 3000,
    "batch_size": 16, "scheduler": "MULTISTEP", "scheduler_extra": None, "optimizer": "ADAMW",
    "optimizer_extra": None, "weight_decay_norm": 0.0, "weight_decay_embed": 0.0, "backbone_multiplier": 0.1,
    "decoder_multiplier": 1.0, "head_multiplier": 1.0, "freeze_bn": False, "clip_gradients": 0.1,
    "size_divisibility": 0, "gather_metric_period": 1, "zero_grad_before_forward": False, "sync_to_hub": False,
}


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("datasets") / "digits"
    subprocess.run([sys.executable, "-m", "focoos.data.digits", "--out", str(out), "--train-images", "4",
                    "--val-images", "4", "--size", str(RESOLUTION), "--max-scale", "2"],
                   check=True, capture_output=True)
    return out


def _splits(digits: Path):
    dataset = AutoDataset(digits.name, Task.DETECTION, DatasetLayout.ROBOFLOW_COCO, digits.parent)
    augs = DatasetAugmentations(resolution=RESOLUTION)
    return dataset.get_split(augs, DatasetSplitType.TRAIN), dataset.get_split(augs, DatasetSplitType.VAL)


def _detector():
    info = ModelInfo(name="tiny-args", model_family=ModelFamily.DETR, task=Task.DETECTION, classes=CLASSES,
                     im_size=RESOLUTION, config={**detr_config(32, 10, 1, heads=2), "num_classes": 10, "top_k": 10})
    return quiet_get(info.name, model_info=info, device="cpu")


def _args(tmp_path: Path, **overrides) -> TrainerArgs:
    values = {"run_name": "run", "output_dir": str(tmp_path), "max_iters": 4, "batch_size": 2, "eval_period": 2,
              "log_period": 1, "checkpointer_period": 4, "learning_rate": 1e-4, "seed": 3, "workers": 0,
              "device": "cpu"}
    return TrainerArgs(**{**values, **overrides})


# -- fields
def test_every_focoos_field_with_focoos_default(monkeypatch, tmp_path):
    monkeypatch.setenv("FOCOOS_MODELS_DIR", str(tmp_path / "models"))  # read when the args are made
    args = TrainerArgs(run_name="x")
    assert set(FOCOOS_DEFAULTS) <= set(TrainerArgs.model_fields)
    for name, default in FOCOOS_DEFAULTS.items():
        if default is not None or name in ("ckpt_dir", "init_checkpoint", "scheduler_extra", "optimizer_extra"):
            assert getattr(args, name) == default, name
    assert args.output_dir == str(tmp_path / "models")
    visible = torch.cuda.device_count() if torch.cuda.is_available() else int(torch.backends.mps.is_available())
    assert args.num_gpus == visible


def test_invalid_fields_fail_naming_them():
    with pytest.raises(ValidationError, match="weight_decay_nrm"):
        TrainerArgs(run_name="x", weight_decay_nrm=0.1)
    with pytest.raises(ValidationError, match="gather_metric_period"):
        TrainerArgs(run_name="x", gather_metric_period=0)
    with pytest.raises(ValidationError, match="milestone not an option of MULTISTEP"):
        TrainerArgs(run_name="x", scheduler_extra={"milestone": [0.5]})
    with pytest.raises(ValidationError, match="power not an option of FIXED"):
        TrainerArgs(run_name="x", scheduler="FIXED", scheduler_extra={"power": 2})
    with pytest.raises(ValidationError, match="milestones must increase"):
        TrainerArgs(run_name="x", scheduler_extra={"milestones": [0.9, 0.5]})
    lower = TrainerArgs(run_name="x", scheduler="cosine", optimizer="rmsprop")  # Focoos upper-cases the names
    assert (lower.scheduler.value, lower.optimizer.value) == ("COSINE", "RMSPROP")


# -- optimizer and schedule
def _by_parameter(groups: list[dict]) -> dict[int, tuple[float, float]]:
    return {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}


def test_param_groups_follow_focoos_multiplier_and_decay_rules():
    info = ModelInfo(name="mf", model_family=ModelFamily.MASKFORMER, task=Task.INSTANCE_SEGMENTATION,
                     classes=["a", "b"], im_size=64,
                     config={**mask_config(32, 10, 1, semantic=False), "num_classes": 2})
    network = quiet_get(info.name, model_info=info, device="cpu").model
    args = TrainerArgs(run_name="x", learning_rate=1.0, weight_decay=0.5, backbone_multiplier=0.1,
                       decoder_multiplier=0.5, head_multiplier=2.0, weight_decay_norm=0.25, weight_decay_embed=0.125)
    groups = _by_parameter(param_groups(network, args))
    modules = dict(network.named_modules())
    expected_kinds = set()
    for name, param in network.named_parameters():
        module_name, _, param_name = name.rpartition(".")
        module = modules[module_name]
        lr = 1.0
        lr *= 0.1 if "backbone" in module_name else 1.0
        lr *= 0.5 if "pixel_decoder" in module_name else 1.0
        lr *= 2.0 if "head" in module_name and "classifier" not in module_name else 1.0
        decay = 0.5
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.LayerNorm):
            decay = 0.25
        if isinstance(module, torch.nn.Embedding):
            decay = 0.125
        expected_kinds.add((type(module).__name__, param_name, decay))
        assert groups[id(param)] == pytest.approx((lr, decay)), name
    assert ("Conv2d", "bias", 0.5) in expected_kinds  # Focoos decays plain biases; only norms/embeddings differ
    assert {("Embedding", "weight", 0.125), ("LayerNorm", "bias", 0.25)} <= expected_kinds
    frozen = _by_parameter(param_groups(network, args.model_copy(update={"backbone_multiplier": 0.0})))
    conv = network.pixel_decoder.backbone.get_submodule(next(
        n for n, m in network.pixel_decoder.backbone.named_modules() if isinstance(m, torch.nn.Conv2d)))
    assert frozen[id(conv.weight)] == (0.0, 0.0)  # a frozen part gets no weight decay either


def test_optimizers_take_focoos_names_and_optimizer_extra():
    network = _detector().model
    rms = build_optimizer(network, TrainerArgs(run_name="x", optimizer="RMSPROP",
                                               optimizer_extra={"alpha": 0.95, "momentum": 0.5}))
    assert isinstance(rms, torch.optim.RMSprop)
    assert {(g["alpha"], g["momentum"]) for g in rms.param_groups} == {(0.95, 0.5)}
    sgd = build_optimizer(network, TrainerArgs(run_name="x", optimizer="SGD"))
    assert {g["momentum"] for g in sgd.param_groups} == {0}  # Focoos passes no momentum of its own
    adamw = build_optimizer(network, TrainerArgs(run_name="x", optimizer_extra={"betas": (0.8, 0.9)}))
    assert {tuple(g["betas"]) for g in adamw.param_groups} == {(0.8, 0.9)}
    with pytest.raises(FocoosError, match="momentm not an option of torch.optim.SGD"):
        build_optimizer(network, TrainerArgs(run_name="x", optimizer="SGD", optimizer_extra={"momentm": 0.9}))
    with pytest.raises(FocoosError, match="cannot set lr"):
        build_optimizer(network, TrainerArgs(run_name="x", optimizer_extra={"lr": 0.1}))


def test_schedules_match_focoos_formulas():
    def factors(steps, **kwargs):
        args = TrainerArgs(run_name="x", max_iters=10, **kwargs)
        return [lr_factor(args, i) for i in steps]

    assert factors(range(10)) == [1.0] * 10  # Focoos' default MULTISTEP has no milestones and no warmup
    assert factors([4, 5, 8, 9], scheduler_extra={"milestones": [0.5, 0.9], "gamma": 0.5}) == [1, 0.5, 0.5, 0.25]
    warm = {"warmup_iters": 4, "warmup_factor": 0.2}
    half_cosine = [0.5 * (1 + math.cos(math.pi * i / 10)) for i in (0, 2, 4)]
    assert factors([0, 2, 4], scheduler="COSINE", scheduler_extra=warm) == pytest.approx(
        [0.2 * half_cosine[0], 0.6 * half_cosine[1], half_cosine[2]])  # warmup 0.2 -> 1 times the half cosine
    assert factors([5], scheduler="POLY", scheduler_extra={"power": 2.0}) == [0.25]
    assert factors([9], scheduler="POLY", scheduler_extra={"constant_ending": 0.2}) == [0.2]
    assert factors([0, 5], scheduler="FIXED") == [1.0, 1.0]
    assert factors([0, 1, 2], warmup_iters=2) == pytest.approx([0.001, 0.5005, 1.0])  # our shorthand
    assert factors([0], scheduler_extra={"warmup_iters": 2, "warmup_method": "constant", "warmup_factor": 0.3}) == [0.3]


def _focoos_lr_factor(scheduler: str, extra: dict, max_iters: int, i: int) -> float:
    """Focoos' schedule at i finished steps, as TrainerArgs documents it (detectron2's warmup times the curve)."""
    steps, start = extra.get("warmup_iters", 0), extra.get("warmup_factor", 1.0)
    warm = 1.0
    if i < steps:
        method = extra.get("warmup_method", "linear")
        alpha = {"constant": 0.0, "linear": i / steps, "quadratic": (i / steps) ** 2}[method]
        warm = start if method == "constant" else start + (1 - start) * alpha
    if scheduler == "MULTISTEP":
        passed = sum(i >= int(m * max_iters) for m in extra.get("milestones", []))
        return warm * extra.get("gamma", 0.1) ** passed
    if scheduler == "COSINE":
        return warm * (1 + math.cos(math.pi * i / max_iters)) / 2
    if scheduler == "POLY":
        poly = (1 - i / max_iters) ** extra.get("power", 0.9)
        ending = extra.get("constant_ending", 0.0)
        return ending if ending > 0 and warm == 1.0 and poly < ending else warm * poly
    return warm


SCHEDULES = [  # (scheduler, scheduler_extra, TrainerArgs.warmup_iters)
    ("MULTISTEP", {}, 0),
    ("MULTISTEP", {"milestones": [0.5, 0.75], "gamma": 0.5, "warmup_iters": 4, "warmup_factor": 0.2}, 0),
    ("MULTISTEP", {"warmup_iters": 3, "warmup_method": "constant", "warmup_factor": 0.3}, 0),
    ("COSINE", {}, 0),
    ("COSINE", {"warmup_iters": 5, "warmup_factor": 0.1, "warmup_method": "quadratic"}, 0),
    ("COSINE", {}, 3),
    ("POLY", {"power": 2.0}, 0),
    ("POLY", {"power": 0.9, "constant_ending": 0.3, "warmup_iters": 4, "warmup_factor": 0.5}, 0),
    ("FIXED", {}, 0),
    ("FIXED", {}, 5),
]


def _scheduled(args: TrainerArgs, network: torch.nn.Module, steps: range, state: dict | None = None):
    """The lr of each optimizer group before each of `steps` steps, driven by the trainer's scheduler."""
    optimizer = build_optimizer(network, args)
    scheduler = build_scheduler(optimizer, args)
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    rates = []
    for _ in steps:
        rates.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return rates, {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}


@pytest.mark.parametrize(("scheduler", "extra", "warmup_iters"), SCHEDULES)
def test_torch_scheduler_gives_focoos_lr_every_iteration_and_resumes(scheduler, extra, warmup_iters):
    network = torch.nn.ModuleDict({"backbone": torch.nn.Linear(2, 2), "head": torch.nn.Linear(2, 2)})
    args = TrainerArgs(run_name="x", max_iters=20, learning_rate=0.5, backbone_multiplier=0.1, scheduler=scheduler,
                       scheduler_extra=extra or None, warmup_iters=warmup_iters)
    if warmup_iters:
        extra = {"warmup_iters": warmup_iters, "warmup_factor": 0.001}  # the shorthand: linear from 0.001
    rates, _ = _scheduled(args, network, range(20))
    expected = [[0.5 * m * _focoos_lr_factor(scheduler, extra, 20, i) for m in (0.1, 1.0)] for i in range(20)]
    np.testing.assert_allclose(rates, expected, rtol=1e-12, atol=0)
    first, state = _scheduled(args, network, range(7))
    resumed, _ = _scheduled(args, network, range(7, 20), torch.load(_saved(state), weights_only=False))
    assert first + resumed == rates


def _saved(state: dict) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def test_ema_follows_focoos_decay_warmup_on_weights_and_buffers():
    network = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    register_pixel_stats(network, [1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    ema = focoos_ema(network, decay=0.9, warmup=3)
    expected = {k: v.clone().double() for k, v in network.state_dict().items()}
    for k in range(1, 6):
        with torch.no_grad():
            for p in network.parameters():
                p.add_(torch.randn_like(p))
        network.train()(torch.randn(4, 2))  # moves the batch-norm statistics and counter
        kept = 0.9 * (1 - math.exp(-k / 3))
        for key, value in network.state_dict().items():
            expected[key] = value.double() if key.endswith("num_batches_tracked") else (
                kept * expected[key] + (1 - kept) * value.double())
        ema.update_parameters(network)
    averaged = ema.module.state_dict()
    for key, value in expected.items():
        torch.testing.assert_close(averaged[key].double(), value, rtol=1e-6, atol=1e-6, msg=key)
    assert int(averaged["1.num_batches_tracked"]) == 5 and int(ema.n_averaged) - 1 == 5
    assert torch.equal(ema.module.pixel_mean, network.pixel_mean)  # a constant buffer stays exactly itself
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())


@pytest.mark.parametrize("saved_schedule", [True, False])
def test_resume_continues_ema_and_schedule_exactly(digits, tmp_path, saved_schedule):
    """Two steps, checkpoint, two steps; a trainer resumed from the checkpoint makes the same two steps.
    Without "scheduler" (checkpoints written before the schedule had a state) the lr follows the iteration."""
    train, _ = _splits(digits)
    args = _args(tmp_path, ema_enabled=True, ema_decay=0.9, ema_warmup=3, scheduler="COSINE", warmup_iters=2)
    straight = Trainer(_detector().model, _detector().model_info, args, train, None)
    loader = straight._loader()
    for _ in range(2):
        straight.step(next(loader))
    straight.save_checkpoint()
    checkpoint = tmp_path / "run" / "model_0000002.pth"
    if not saved_schedule:
        state = torch.load(checkpoint, weights_only=False)
        del state["scheduler"]
        torch.save(state, checkpoint)
    resumed = Trainer(_detector().model, _detector().model_info, args.model_copy(update={"resume": True}), train, None)
    assert resumed.resume() and resumed.iteration == 2 and int(resumed.ema.n_averaged) == 3
    resumed_loader = resumed._loader()
    for _ in range(2):
        assert [g["lr"] for g in resumed.optimizer.param_groups] == [g["lr"] for g in straight.optimizer.param_groups]
        straight.step(next(loader))
        resumed.step(next(resumed_loader))
    for ours, theirs in ((resumed.network, straight.network), (resumed.eval_network(), straight.eval_network())):
        for (key, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=key)
    assert resumed._state()["ema_updates"] == straight._state()["ema_updates"] == 4


# -- fields that act on a run
def test_size_divisibility_pads_images_with_the_mean_and_targets_with_nothing():
    images = torch.randint(0, 255, (2, 3, 30, 45), dtype=torch.uint8)
    targets = [{"labels": torch.tensor([1]), "masks": torch.ones(1, 30, 45, dtype=torch.uint8),
                "sem_seg": torch.zeros(30, 45, dtype=torch.int64), "boxes": torch.tensor([[1.0, 2.0, 3.0, 4.0]])}] * 2
    mean = torch.tensor([10.0, 20.0, 30.0]).reshape(1, 3, 1, 1)
    padded, padded_targets = pad_to_multiple(images, targets, 32, mean)
    assert padded.shape == (2, 3, 32, 64)
    assert torch.equal(padded[..., :30, :45], images.float())
    assert torch.equal(padded[0, :, 31, 63], mean.flatten()) and torch.equal(padded[1, :, 0, 50], mean.flatten())
    masks, sem_seg = padded_targets[0]["masks"], padded_targets[0]["sem_seg"]
    assert masks.shape == (1, 32, 64) and masks[:, 30:].sum() == 0 and masks[:, :, 45:].sum() == 0
    assert (sem_seg[30:] == IGNORE_INDEX).all() and (sem_seg[:30, :45] == 0).all()
    assert torch.equal(padded_targets[0]["boxes"], targets[0]["boxes"])
    assert pad_to_multiple(images, targets, 0, mean)[0] is images  # 0: no padding (Focoos' default)


def _grads_at_forward(trainer: Trainer) -> list[bool]:
    """For each training forward: were the previous step's gradients still there?"""
    seen: list[bool] = []

    def record(module, inputs):
        if module.training:
            seen.append(any(p.grad is not None for p in module.parameters()))

    trainer.network.register_forward_pre_hook(record)
    return seen


@pytest.mark.parametrize("before_forward", [False, True])
def test_zero_grad_before_forward_and_gather_metric_period(digits, tmp_path, before_forward):
    model = _detector()
    train, _ = _splits(digits)
    args = _args(tmp_path, zero_grad_before_forward=before_forward, gather_metric_period=2)
    trainer = Trainer(model.model, model.model_info, args, train, None)
    seen = _grads_at_forward(trainer)
    loader = trainer._loader()
    results = [trainer.step(next(loader)) for _ in range(3)]
    assert seen == [False, not before_forward, not before_forward]
    assert results[0] is None and results[2] is None and set(results[1]) >= {"total_loss", "loss_bbox"}
    assert trainer.losses_iteration == 2


def test_a_run_pads_batches_gathers_losses_and_saves_previews(digits, tmp_path):
    model = _detector()
    train, val = _splits(digits)
    shapes: list[tuple[int, ...]] = []
    model.model.register_forward_pre_hook(lambda m, x: shapes.append(tuple(x[0].shape)) if m.training else None)
    args = _args(tmp_path, samples=3, size_divisibility=64, gather_metric_period=2, optimizer="RMSPROP",
                 optimizer_extra={"alpha": 0.9})
    info = model.train(args, train, val)

    assert set(shapes) == {(2, 3, 128, 128)}  # 96 padded to the next multiple of 64
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "metrics.json").read_text().splitlines()]
    assert [r["iteration"] for r in records if "total_loss" in r] == [2, 4]  # each gathered value logged once
    for iteration in (2, 4):
        preview = cv2.imread(str(run / "preview" / f"samples_iter_{iteration}.jpg"))
        assert preview is not None and preview.shape == (2 * RESOLUTION, 2 * RESOLUTION, 3)  # 3 images, 2x2 grid
    assert info.train_args["optimizer_extra"] == {"alpha": 0.9} and "bbox/AP" in info.val_metrics


# -- evaluate_model (FocoosModel.eval)
def test_evaluate_model_runs_the_training_evaluator_and_writes_focoos_files(digits, tmp_path, capsys):
    model = _detector()
    _, val = _splits(digits)
    expected = {k: v for k, v in evaluate(model.model, model.model_info, val).items() if v == v}
    metrics = evaluate_model(model, _args(tmp_path, run_name="check"), val)

    assert metrics == pytest.approx(expected) and "bbox/AP" in metrics
    assert "bbox/AP" in capsys.readouterr().out
    eval_dir = tmp_path / "check_eval"
    assert json.loads((eval_dir / "metrics.json").read_text()) == [metrics]
    written = ModelInfo.from_json(eval_dir / "model_info.json")
    assert written.val_metrics == metrics and written.val_dataset == val.name
    assert model.model_info.val_metrics == metrics and not model.model.training
    assert evaluate_model(model, _args(tmp_path / "quiet", run_name="q"), val, save_json=False) == metrics
    assert not (tmp_path / "quiet").exists()

    semantic = ModelInfo(name="sem", model_family=ModelFamily.BISENETFORMER, task=Task.SEMSEG, classes=CLASSES,
                         im_size=64, config={**mask_config(32, 10, 1, semantic=True), "num_classes": 10})
    with pytest.raises(FocoosError, match="does semseg, the test data is detection"):
        evaluate_model(quiet_get("sem", model_info=semantic, device="cpu"), _args(tmp_path), val)


def test_freeze_bn_survives_evaluation(digits, tmp_path):
    model = _detector()
    train, val = _splits(digits)
    trainer = Trainer(model.model, model.model_info, _args(tmp_path, freeze_bn=True, samples=1), train, val)
    norms = [m for m in trainer.network.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = norms[0].running_mean.clone()
    assert trainer._evaluate() is not None and (tmp_path / "run" / "preview" / "samples_iter_0.jpg").is_file()
    assert trainer.network.training and not any(m.training for m in norms)
    trainer.step(next(trainer._loader()))
    assert torch.equal(norms[0].running_mean, before)  # statistics kept through a step after the evaluation
