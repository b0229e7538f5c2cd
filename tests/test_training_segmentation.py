"""Segmentation training: tiny real runs of both tasks on digits canvases with exact masks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from focoos import DatasetLayout, DatasetSplitType, ModelFamily, ModelInfo, Task, TrainerArgs
from focoos.data import AutoDataset, DatasetAugmentations
from tests.conftest import mask_config, quiet_get

pytestmark = pytest.mark.slow
RESOLUTION = 128
TINY = {task: mask_config(32, 10, 2, semantic=task == Task.SEMSEG) for task in Task if task.value.endswith("seg")}
CASES = {
    Task.INSTANCE_SEGMENTATION: (ModelFamily.MASKFORMER, DatasetLayout.ROBOFLOW_COCO, "", "segm/AP"),
    Task.SEMSEG: (ModelFamily.BISENETFORMER, DatasetLayout.ROBOFLOW_SEG, "_sem", "sem_seg/mIoU"),
}


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("datasets") / "digits"
    subprocess.run([sys.executable, "-m", "focoos.data.digits", "--out", str(out), "--train-images", "8",
                    "--val-images", "3", "--size", str(RESOLUTION), "--max-scale", "2", "--semantic"],
                   check=True, capture_output=True)
    return out


@pytest.mark.parametrize("task", list(CASES))
def test_segmentation_training_run_writes_metrics_and_a_loadable_model(task, digits, tmp_path):
    family, layout, suffix, metric = CASES[task]
    folder = digits.with_name(digits.name + suffix)
    dataset = AutoDataset(folder.name, task, layout, folder.parent)
    augs = DatasetAugmentations(resolution=RESOLUTION)
    train, val = dataset.get_split(augs, DatasetSplitType.TRAIN), dataset.get_split(augs, DatasetSplitType.VAL)
    info = ModelInfo(name=f"tiny-{task.value}", model_family=family, task=task, classes=train.classes,
                     im_size=RESOLUTION, config={**TINY[task], "num_classes": len(train.classes)})
    model = quiet_get(info.name, model_info=info, device="cpu")
    args = TrainerArgs(run_name="run", output_dir=str(tmp_path), max_iters=3, batch_size=2, eval_period=3,
                       log_period=1, warmup_iters=1, checkpointer_period=3, learning_rate=1e-4, seed=0,
                       workers=0)
    trained = model.train(args, train, val)

    assert metric in trained.val_metrics and 0.0 <= trained.val_metrics[metric] <= 100.0
    losses = [json.loads(line) for line in (tmp_path / "run" / "metrics.json").read_text().splitlines()]
    assert all(k in losses[0] for k in ("loss_ce", "loss_mask", "loss_dice", "loss_ce_0"))
    assert (tmp_path / "run" / "preview" / "samples_iter_3.jpg").is_file()  # samples=9: the previews of the eval
    reloaded = quiet_get(str(tmp_path / "run"), device="cpu")
    det = reloaded.infer(val.original_image(0), threshold=0.0)
    assert all(d.mask for d in det.detections)
