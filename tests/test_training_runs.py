"""Training runs as a Focoos user meets them: small datasets train, runs are never overwritten, resuming is
explicit, and a finished run's model_info.json names the run and loads its weights."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from focoos import DatasetLayout, DatasetSplitType, ModelFamily, ModelInfo, ModelManager, Task, TrainerArgs
from focoos.data import AutoDataset, DatasetAugmentations
from focoos.model_manager import NoWeightsWarning
from tests.conftest import detr_config, quiet_get, write_coco_split

pytestmark = pytest.mark.slow
SIZE = 96
BOXES = {"red": [20, 30, 100, 120], "green": [170, 70, 100, 100]}  # xywh in the 240x320 scene


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    """A Roboflow COCO dataset of 2 training images and 1 validation image: fewer than Focoos' batch of 16."""
    root = tmp_path_factory.mktemp("datasets") / "shapes"
    for split, count in (("train", 2), ("valid", 1)):
        write_coco_split(root / split, count, BOXES)
    return root


def _splits(shapes: Path):
    dataset = AutoDataset(dataset_name=shapes.name, task=Task.DETECTION, layout=DatasetLayout.ROBOFLOW_COCO,
                          datasets_dir=shapes.parent)
    augs = DatasetAugmentations(resolution=SIZE)
    return dataset.get_split(augs, DatasetSplitType.TRAIN), dataset.get_split(augs, DatasetSplitType.VAL)


def _model():
    info = ModelInfo(name="tiny-shapes", model_family=ModelFamily.DETR, task=Task.DETECTION, classes=list(BOXES),
                     im_size=SIZE, config={**detr_config(32, 10, 1, heads=2), "num_classes": 2, "top_k": 10})
    return quiet_get("tiny-shapes", model_info=info, device="cpu")


def _args(out: Path, **overrides) -> TrainerArgs:
    values = {"run_name": "run", "output_dir": str(out), "max_iters": 1, "eval_period": 100, "checkpointer_period": 1,
              "device": "cpu", "workers": 0, "samples": 0}  # batch_size stays Focoos' 16: more than the 2 images
    return TrainerArgs(**{**values, **overrides})


def test_the_sampler_streams_epochs_so_a_small_split_fills_a_batch():
    from focoos.training.trainer import IterationBatches

    batches = IterationBatches(size=3, batch_size=8, seed=0, start=0)
    first, second = next(iter(batches)), next(iter(IterationBatches(3, 8, seed=0, start=1)))
    assert len(first) == len(second) == 8 and set(first) == set(second) == {0, 1, 2}
    assert sorted(first[:3]) == [0, 1, 2]  # each epoch is a permutation of the split
    assert first == batches.global_batch(0)  # a pure function of (seed, iteration): resumable
    two_ranks = [next(iter(IterationBatches(3, 8, 0, 0, rank=r, world=2))) for r in (0, 1)]
    assert sorted(two_ranks[0] + two_ranks[1]) == sorted(first)


def test_runs_are_never_overwritten_and_a_finished_run_names_itself_and_its_weights(shapes, tmp_path, scene):
    train, val = _splits(shapes)
    model = _model()
    first = model.train(_args(tmp_path), train, val)  # 2 images, batch_size 16: it trains
    run = tmp_path / "run"
    assert first.name == "run" and first.focoos_model == "tiny-shapes" and model.name == "run"
    saved = ModelInfo.from_json(run / "model_info.json")
    assert saved.name == "run" and Path(saved.weights_uri) == (run / "model_final.pth").resolve()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoWeightsWarning)  # the run's weights load, not random ones
        reloaded = ModelManager.get("anything", model_info=saved, device="cpu")
    for key, value in model.model.state_dict().items():
        torch.testing.assert_close(reloaded.model.state_dict()[key], value, msg=key)
    stamp = (run / "model_final.pth").stat().st_mtime_ns

    args = _args(tmp_path)
    second = _model().train(args, train, val)  # the same name again: Focoos' run-1, the first run untouched
    assert second.name == "run-1" and args.run_name == "run-1" and (tmp_path / "run-1" / "model_final.pth").is_file()
    assert (run / "model_final.pth").stat().st_mtime_ns == stamp

    resumed = _model().train(_args(tmp_path, resume=True, max_iters=2), train, val)  # explicit: continues "run"
    assert resumed.name == "run" and resumed.training_info["iterations"] == 2
    assert not (tmp_path / "run-2").exists()


def test_cli_train_resume_needs_the_run_name(tmp_path):
    from focoos.cli import main

    assert main(["train", "--model", "fai-detr-n-digits", "--dataset", str(tmp_path), "--resume"]) == 2
