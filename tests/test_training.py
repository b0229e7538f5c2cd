"""Training: a real (tiny) run on the digits canvases, resume after SIGKILL, DDP on gloo, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from focoos import DatasetLayout, DatasetSplitType, ModelFamily, ModelInfo, ModelManager, Task, TrainerArgs
from focoos.data import AutoDataset, DatasetAugmentations
from tests.conftest import detr_config, quiet_get

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
RESOLUTION = 160
TINY_CONFIG = {**detr_config(32, 20, 1, heads=2), "num_classes": 10, "top_k": 20}


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("datasets") / "digits"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "prepare_digits_dataset.py"), "--out", str(out),
                    "--train-images", "16", "--val-images", "4", "--size", str(RESOLUTION), "--seed", "0"],
                   check=True, capture_output=True)
    return out


def _splits(digits: Path):
    dataset = AutoDataset(dataset_name=digits.name, task=Task.DETECTION, layout=DatasetLayout.ROBOFLOW_COCO,
                          datasets_dir=digits.parent)
    return (dataset.get_split(DatasetAugmentations(resolution=RESOLUTION), DatasetSplitType.TRAIN),
            dataset.get_split(DatasetAugmentations(resolution=RESOLUTION), DatasetSplitType.VAL))


def _tiny_model():
    info = ModelInfo(name="tiny-digits", model_family=ModelFamily.DETR, task=Task.DETECTION,
                     classes=[str(i) for i in range(10)], im_size=RESOLUTION, config=dict(TINY_CONFIG))
    return quiet_get("tiny-digits", model_info=info, device="cpu")


def _args(tmp_path: Path, run_name: str, **overrides) -> TrainerArgs:
    values = {"run_name": run_name, "output_dir": str(tmp_path), "max_iters": 4, "batch_size": 4, "eval_period": 2,
              "log_period": 1, "warmup_iters": 1, "checkpointer_period": 2, "learning_rate": 1e-4, "seed": 7,
              "workers": 0}
    return TrainerArgs(**{**values, **overrides})


def test_trainer_args_reject_unknown_and_invalid_fields():
    with pytest.raises(ValidationError, match="learning_rat"):
        TrainerArgs(run_name="x", learning_rat=1e-3)
    with pytest.raises(ValidationError, match="batch_size"):
        TrainerArgs(run_name="x", batch_size=0)


def test_train_writes_a_loadable_run_with_metrics(digits, tmp_path, scene):
    train, val = _splits(digits)
    model = _tiny_model()
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    info = model.train(_args(tmp_path, "run"), train, val)
    run = tmp_path / "run"
    assert {"model_info.json", "model_final.pth", "metrics.json", "log.txt", "last_checkpoint"} <= {
        p.name for p in run.iterdir()}
    assert "bbox/AP" in info.val_metrics and info.train_args["max_iters"] == 4
    assert any(not torch.equal(before[k], v) for k, v in model.model.state_dict().items())  # weights moved
    lines = [json.loads(line) for line in (run / "metrics.json").read_text().splitlines()]
    assert [r["iteration"] for r in lines if "total_loss" in r] == [1, 2, 3, 4]
    reloaded = ModelManager.get(str(run), device="cpu")  # no random-weights warning: weights are there
    assert reloaded.model_info.val_metrics == info.val_metrics
    assert len(reloaded.infer(scene, threshold=0.0).detections) > 0


def test_model_adapts_its_head_to_the_dataset_classes(digits, tmp_path):
    train, val = _splits(digits)
    model = quiet_get("coco-head", model_info=ModelInfo(
        name="coco-head", model_family=ModelFamily.DETR, task=Task.DETECTION, classes=["a", "b", "c"],
        im_size=RESOLUTION, config={**TINY_CONFIG, "num_classes": 3}), device="cpu")
    model.train(_args(tmp_path, "adapt", max_iters=1, eval_period=1), train, val)
    assert model.classes == [str(i) for i in range(10)]


TRAIN_SCRIPT = """
import sys, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, {root!r})
from tests.test_training import _args, _splits, _tiny_model
from pathlib import Path
import torch
torch.set_num_threads(1)
train, val = _splits(Path({digits!r}))
_tiny_model().train(_args(Path({out!r}), {run!r}, max_iters=8, resume={resume}, checkpointer_period=2, eval_period=100,
                          scheduler="COSINE", ema_enabled=True, ema_decay=0.9, ema_warmup=4), train, val)
"""


def _train_process(digits: Path, out: Path, run: str, resume: bool) -> subprocess.Popen:
    code = TRAIN_SCRIPT.format(root=str(ROOT), digits=str(digits), out=str(out), run=run, resume=resume)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_then_resume_equals_an_uninterrupted_run(digits, tmp_path):
    """The lr schedule and the EMA weights (what model_final.pth holds) continue from the checkpoint."""
    reference = _train_process(digits, tmp_path, "reference", resume=False)
    assert reference.wait(timeout=300) == 0, reference.stderr.read().decode()[-2000:]

    victim = _train_process(digits, tmp_path, "resumed", resume=False)
    marker = tmp_path / "resumed" / "last_checkpoint"
    deadline = time.time() + 240
    while time.time() < deadline and not (marker.is_file() and marker.read_text().strip() >= "model_0000004.pth"):
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert (tmp_path / "resumed" / "model_final.pth").exists() is False
    resumed = _train_process(digits, tmp_path, "resumed", resume=True)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()[-2000:]

    a = torch.load(tmp_path / "reference" / "model_final.pth", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "model_final.pth", weights_only=True)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    records = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.json").read_text().splitlines()]
    assert [r["iteration"] for r in records if "total_loss" in r] == list(range(1, 9))  # each step logged once


def test_two_gloo_workers_equal_one_process(digits, tmp_path):
    train, val = _splits(digits)
    single, double = _tiny_model(), _tiny_model()
    double.model.load_state_dict(single.model.state_dict())
    # SGD: Adam divides by sqrt(v) and turns float-order noise in near-zero gradients into lr-sized steps
    common = {"max_iters": 3, "eval_period": 100, "freeze_bn": True, "batch_size": 4, "optimizer": "SGD",
              "learning_rate": 1e-2}
    single.train(_args(tmp_path, "single", **common), train, val)
    double.train(_args(tmp_path, "ddp", num_gpus=2, **common), train, val)
    for (key, a), b in zip(single.model.state_dict().items(), double.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=key)


def test_cli_train(digits, tmp_path):
    from tests.test_cli_and_quickstart import FOCOOS_BIN, _run

    model = _tiny_model()
    model.save(tmp_path / "start")
    args = [str(FOCOOS_BIN), "train", "--model", str(tmp_path / "start"), "--dataset", str(digits), "--run-name", "cli",
            "--output-dir", str(tmp_path / "runs"), "--max-iters", "2", "--batch-size", "4", "--eval-period", "2"]
    result = _run(args, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "runs" / "cli" / "model_final.pth").is_file()


def test_install_in_registry_ships_loadable_half_precision_weights(tmp_path, monkeypatch, scene):
    import warnings

    from focoos.training.bundle import install_in_registry

    from focoos import ModelRegistry, NoWeightsWarning

    model = _tiny_model()
    weights = install_in_registry(model, "digits test split", _args(tmp_path, "r"), registry_dir=tmp_path)
    state = torch.load(weights, weights_only=True)["model"]  # Focoos' checkpoint form
    assert state["head.predictor.enc_score_classifier.weight"].dtype == torch.float16
    monkeypatch.setattr(ModelRegistry, "registry_dir", tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoWeightsWarning)
        shipped = ModelManager.get("tiny-digits", device="cpu")
    assert shipped.model_info.val_dataset == "digits test split" and shipped.model_info.weights_sha256
    a, b = shipped.infer(scene, threshold=0.0), model.infer(scene, threshold=0.0)
    assert abs(a.detections[0].conf - b.detections[0].conf) < 1e-2  # fp16 storage, fp32 compute
