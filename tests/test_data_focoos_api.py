"""Focoos' data API on tiny datasets built here: AutoDataset defaults and archives, splits, previews,
DatasetAugmentations' fields and get_default_by_task."""

from __future__ import annotations

import argparse
import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from focoos import DatasetSplitType
from focoos.data import MapDataset, collate_detection
from focoos.data.archives import MARKER
from focoos.data.auto_dataset import AutoDataset
from focoos.data.default_aug import DatasetAugmentations, get_default_by_task
from focoos.data.errors import DatasetError
from focoos.data.transforms import ColorAugSSD, FitToCanvas, RandomAspectRatio, ResizeShortestEdge
from focoos.ports import DatasetLayout, Task
from focoos.processing.annotate import class_color
from tests.test_data import HEIGHT, WIDTH, make_cls_folder, toy_split, write_coco_split
from tests.test_data_segmentation import SEM_SIZE, write_instseg, write_semseg

COCO = (Task.DETECTION, DatasetLayout.ROBOFLOW_COCO)


@pytest.fixture()
def datasets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh FOCOOS_DATASETS_DIR, so AutoDataset's default folder is this test's own."""
    folder = tmp_path / "datasets"
    folder.mkdir()
    monkeypatch.setenv("FOCOOS_DATASETS_DIR", str(folder))
    return folder


def write_toy(root: Path, splits: tuple[str, ...] = ("train", "valid")) -> Path:
    images, annotations = toy_split()
    for split in splits:
        write_coco_split(root / split, images, annotations)
    return root


def zip_folder(folder: Path, archive: Path, top: str | None = None) -> Path:
    """Zip a folder's files, under `top/` when given (as many exporters do)."""
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = path.relative_to(folder).as_posix()
                zipped.write(path, f"{top}/{name}" if top else name)
    return archive


# ---------------------------------------------------------------- AutoDataset: defaults, splits, archives


def test_defaults_follow_focoos(datasets_dir: Path) -> None:
    """datasets_dir defaults to settings.datasets_dir(); get_split's split defaults to TRAIN; test/ is read."""
    write_toy(datasets_dir / "toy", splits=("train", "valid", "test"))
    dataset = AutoDataset("toy", *COCO)
    assert dataset.root == datasets_dir / "toy" and dataset.dataset_path == str(datasets_dir / "toy")
    train = dataset.get_split(DatasetAugmentations(resolution=32))
    assert train.name == "toy" and len(train) == 3 and train.resolution == (32, 32)
    assert DatasetSplitType.TEST.value == "test"
    test = dataset.get_split(DatasetAugmentations(resolution=32), DatasetSplitType.TEST)
    assert test.name == "toy" and test.classes == train.classes
    (datasets_dir / "toy" / "test").rename(datasets_dir / "toy" / "testing")
    assert dataset.split_dir("test").name == "testing"
    (datasets_dir / "toy" / "testing").rename(datasets_dir / "toy" / "holdout")
    with pytest.raises(DatasetError, match=r"has no test split: expected a folder test or testing"):
        dataset.get_split(DatasetAugmentations(resolution=32), DatasetSplitType.TEST)


def test_zip_is_extracted_once_into_datasets_dir(datasets_dir: Path, tmp_path: Path) -> None:
    source = write_toy(tmp_path / "source")
    zip_folder(source, datasets_dir / "toy.zip", top="toy-export")
    first = AutoDataset("toy.zip", *COCO)
    assert first.root == datasets_dir / "toy" and first.dataset_name == "toy"
    assert (datasets_dir / "toy" / "train" / "_annotations.coco.json").is_file()
    assert len(first.get_split(DatasetAugmentations(resolution=32), "val")) == 3
    # Read from the folder next time: a file added there survives, nothing is extracted again.
    (datasets_dir / "toy" / "note.txt").write_text("kept")
    assert AutoDataset("toy.zip", *COCO).root == datasets_dir / "toy"
    assert (datasets_dir / "toy" / "note.txt").is_file()
    # A zip elsewhere is extracted into datasets_dir too, and a changed zip afresh.
    other = zip_folder(write_toy(tmp_path / "other", splits=("train",)), tmp_path / "toy.zip")
    os.utime(other, ns=(1, 1))
    dataset = AutoDataset(str(other), *COCO)
    assert dataset.root == datasets_dir / "toy" and not (datasets_dir / "toy" / "note.txt").exists()
    assert not (datasets_dir / "toy" / "valid").exists() and (datasets_dir / "toy" / MARKER).is_file()
    # A name whose folder is missing opens its archive (a hub download not opened yet).
    zip_folder(source, datasets_dir / "fresh.zip")
    assert len(AutoDataset("fresh", *COCO).get_split(DatasetAugmentations(resolution=32), "val")) == 3
    assert [p.name for p in datasets_dir.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_tar_gz_archive_with_a_top_folder(datasets_dir: Path, tmp_path: Path) -> None:
    source = write_toy(tmp_path / "source")
    with tarfile.open(datasets_dir / "toy.tar.gz", "w:gz") as tarred:
        tarred.add(source, arcname="export")
    dataset = AutoDataset("toy.tar.gz", *COCO)
    assert dataset.root == datasets_dir / "toy" and len(dataset.get_split(DatasetAugmentations(resolution=32))) == 3


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04 not really a zip", r"bad\.zip is not a valid \.zip archive"),
        (_zip_bytes({"images/a.png": b"x", "readme.txt": b"y"}), r"holds images, readme\.txt: expected split folders"),
        (_zip_bytes({"../evil/train/a.txt": b"x"}), r"unsafe path '\.\./evil/train/a\.txt'"),
        (None, r"dataset archive not found: .*bad\.zip"),
    ],
)
def test_bad_archives_raise_dataset_error(datasets_dir: Path, content: bytes | None, message: str) -> None:
    if content is not None:
        (datasets_dir / "bad.zip").write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        AutoDataset("bad.zip", *COCO)
    assert not (datasets_dir / "bad").exists() and not (datasets_dir.parent / "evil").exists()


def test_archive_never_overwrites_a_folder_it_did_not_create(datasets_dir: Path, tmp_path: Path) -> None:
    write_toy(datasets_dir / "toy")
    zip_folder(write_toy(tmp_path / "source"), datasets_dir / "toy.zip")
    with pytest.raises(DatasetError, match=r"toy already exists and was not extracted from toy\.zip"):
        AutoDataset("toy.zip", *COCO)


# ---------------------------------------------------------------- preview


def _has_colour(picture: np.ndarray, colour: tuple[int, int, int]) -> bool:
    return bool((np.abs(picture.astype(int) - colour).sum(-1) < 10).any())


def test_preview_draws_boxes_masks_labels_and_saves(tmp_path: Path) -> None:
    write_instseg(tmp_path)
    data = AutoDataset("toy", Task.INSTANCE_SEGMENTATION, DatasetLayout.ROBOFLOW_COCO, tmp_path).get_split(
        DatasetAugmentations(resolution=200, horizontal_flip=1.0), "train"
    )
    picture = data.preview(0)
    assert isinstance(picture, Image.Image) and picture.size == (200, 200)
    drawn = np.asarray(picture)  # 100x200 -> shorter side 200 -> fit: scale 1, flipped
    assert _has_colour(drawn[:, WIDTH // 2 :], class_color(0)) and _has_colour(drawn, class_color(1))
    original = np.asarray(data.preview(0, use_augmentations=False, path=tmp_path / "out" / "gt.png"))
    assert original.shape == (HEIGHT, WIDTH, 3) and (tmp_path / "out" / "gt.png").is_file()
    # Not flipped: the first object (class 0, box x 20..60) is drawn on the left.
    assert _has_colour(original[:, : WIDTH // 2], class_color(0))
    row = data.preview([0, 1])
    assert row.size == (200 * 2 + 8, 200)
    with pytest.raises(DatasetError, match="preview index 5 is out of range"):
        data.preview(5)


def test_preview_of_semantic_and_classification_splits(tmp_path: Path) -> None:
    write_semseg(tmp_path)
    sem = AutoDataset("sem", Task.SEMSEG, DatasetLayout.ROBOFLOW_SEG, tmp_path).get_split(
        DatasetAugmentations(resolution=SEM_SIZE), "val"
    )
    picture = np.asarray(sem.preview(1))
    assert picture.shape == (SEM_SIZE, SEM_SIZE, 3)
    assert not np.array_equal(picture, np.full_like(picture, 255))  # masks blended onto the white image
    make_cls_folder(tmp_path / "pets", {"a": 1, "b": 1})
    pets = AutoDataset("pets", Task.CLASSIFICATION, DatasetLayout.CLS_FOLDER, tmp_path).get_split(
        DatasetAugmentations(resolution=32), "val"
    )
    assert _has_colour(np.asarray(pets.preview(1)), class_color(1))  # the label "b" in its class colour


# ---------------------------------------------------------------- DatasetAugmentations fields


def _toy_split(root: Path, split: str = "train", **augs) -> MapDataset:
    write_toy(root / "toy")
    return AutoDataset("toy", Task.DETECTION, DatasetLayout.ROBOFLOW_COCO, root).get_split(
        DatasetAugmentations(**augs), split
    )


def test_square_resizes_straight_otherwise_the_aspect_is_kept_and_padded(tmp_path: Path) -> None:
    # 100x200 image, box xywh [20,10,40,30].
    straight = _toy_split(tmp_path / "a", "val", resolution=50, square=1.0)[0]
    assert straight["boxes"][0].tolist() == [5.0, 5.0, 15.0, 20.0]
    kept = _toy_split(tmp_path / "b", "val", resolution=50)[0]  # shorter side 50 -> 50x100, fit -> 25x50
    assert kept["image"].shape == (3, 50, 50) and kept["boxes"][0].tolist() == [5.0, 2.5, 15.0, 10.0]
    assert kept["image"][:, 25:].max() == 0  # padding at the bottom, as Focoos pads its batches


def test_non_square_resolution_and_collate(tmp_path: Path) -> None:
    data = _toy_split(tmp_path, "train", resolution=(48, 80), horizontal_flip=0.5, scale_ratio=0.5)
    images, targets = collate_detection([data[i] for i in range(3)])
    assert images.shape == (3, 3, 48, 80) and data.resolution == (48, 80)
    # A (h, w) resolution resizes straight to it (Focoos ignores scale_ratio there): x * 80/200, y * 48/100.
    box = _toy_split(tmp_path / "val", "val", resolution=(48, 80))[0]["boxes"][0]
    assert torch.allclose(box, torch.tensor([8.0, 4.8, 24.0, 19.2]))


def test_scale_ratio_and_max_size_set_the_shorter_and_longer_side() -> None:
    image = tv_tensors.Image(torch.zeros(3, 100, 200, dtype=torch.uint8))
    torch.manual_seed(0)
    sides = {tuple(ResizeShortestEdge((45, 90))(image).shape[-2:]) for _ in range(30)}
    assert all(45 <= h <= 90 and w == 2 * h for h, w in sides) and len(sides) > 5
    assert ResizeShortestEdge((64, 64), max_size=100)(image).shape[-2:] == (50, 100)
    steps = DatasetAugmentations(resolution=64, scale_ratio=1.0).steps(train=True)
    assert [s.short_edge for s in steps if isinstance(s, ResizeShortestEdge)] == [(32, 128)]


def test_crop_size_crops_then_pads(tmp_path: Path) -> None:
    data = _toy_split(tmp_path, "train", resolution=64, crop=True, crop_size=40)
    torch.manual_seed(0)
    for _ in range(5):
        image = data[0]["image"]
        assert image.shape == (3, 64, 64) and image[:, 40:].max() == 0 and image[:, :, 40:].max() == 0


def test_rotation_is_a_fraction_of_180_degrees(tmp_path: Path) -> None:
    rotations = [s for s in DatasetAugmentations(rotation=0.5).steps(train=True) if isinstance(s, v2.RandomRotation)]
    assert [s.degrees for s in rotations] == [[-90.0, 90.0]]
    with pytest.raises(ValueError, match="rotation"):
        DatasetAugmentations(rotation=20)
    data = _toy_split(tmp_path, "train", resolution=64, square=1.0, rotation=1.0)
    torch.manual_seed(0)
    moved = {tuple(data[1]["boxes"][0].round().tolist()) for _ in range(6)}
    assert len(moved) > 3  # a different angle each time


def test_aspect_ratio_stretches_one_side_and_zoom_out_shrinks_the_content() -> None:
    image = tv_tensors.Image(torch.full((3, 64, 64), 255, dtype=torch.uint8))
    torch.manual_seed(0)
    for _ in range(10):
        h, w = RandomAspectRatio(1.0)(image).shape[-2:]
        assert (h == 64) != (w == 64) or h == w == 64
        assert 0.25 <= h / w <= 4.0
    zoom = DatasetAugmentations(resolution=64, zoom_out=1.0, zoom_out_side=4.0, square=1.0).build(True, False)
    assert float(zoom(image).float().mean()) < 255 * 0.9


def test_color_augmentation_strength() -> None:
    grey = tv_tensors.Image(torch.full((3, 8, 8), 100, dtype=torch.uint8))
    brightness_only = ColorAugSSD(brightness_delta=32, contrast=(1, 1), saturation=(1, 1), hue_delta=0)
    torch.manual_seed(0)
    shifts = {int(brightness_only(grey)[0, 0, 0]) - 100 for _ in range(20)}
    assert 0 in shifts and len(shifts) > 3 and all(-32 <= s <= 32 for s in shifts)
    steps = DatasetAugmentations(color_augmentation=0.5).steps(train=True)
    colour = next(s for s in steps if isinstance(s, ColorAugSSD))
    assert (colour.brightness_delta, colour.contrast, colour.saturation, colour.hue_delta) == (
        16.0, (0.75, 1.25), (0.75, 1.25), 9.0
    )
    assert not any(isinstance(s, ColorAugSSD) for s in DatasetAugmentations().steps(train=True))


def test_fit_to_canvas_fills_masks_with_their_value() -> None:
    sample = {"image": tv_tensors.Image(torch.full((3, 20, 40), 9, dtype=torch.uint8)),
              "sem_seg": tv_tensors.Mask(torch.zeros(20, 40, dtype=torch.uint8))}
    out = FitToCanvas((32, 32), fill={tv_tensors.Image: 0, tv_tensors.Mask: 255, "others": 0})(sample)
    assert out["image"].shape == (3, 32, 32) and out["image"][:, :16].min() == 9 and out["image"][:, 16:].max() == 0
    assert out["sem_seg"][16:].min() == 255 and out["sem_seg"][:16].max() == 0


def test_override_and_list_of_augmentations(tmp_path: Path) -> None:
    augs = DatasetAugmentations().override({"resolution": 48, "horizontal_flip": None, "unknown": 1})
    augs.override(argparse.Namespace(crop=True, vertical_flip=0.5))
    assert (augs.resolution, augs.horizontal_flip, augs.crop, augs.vertical_flip) == (48, 0.0, True, 0.5)
    with pytest.raises(ValueError):
        augs.override({"square": 2.0})
    write_toy(tmp_path / "toy")
    dataset = AutoDataset("toy", Task.DETECTION, DatasetLayout.ROBOFLOW_COCO, tmp_path)
    # Some Focoos scripts pass augs.get_augmentations(): applied as given, boxes still sanitised.
    data = dataset.get_split(DatasetAugmentations(resolution=48, square=1.0).get_augmentations(), "val")
    assert data[0]["image"].shape == (3, 48, 48) and data.resolution is None


# ---------------------------------------------------------------- get_default_by_task


def test_get_default_by_task_matches_focoos() -> None:
    train, val = get_default_by_task(Task.DETECTION, 640)
    assert (train.square, train.crop, train.scale_ratio, train.max_size) == (1.0, True, 0.5, 800)
    assert (train.color_augmentation, train.horizontal_flip, val.square, val.scale_ratio) == (1.0, 0.5, 1.0, 0.0)
    advanced, _ = get_default_by_task("detection", 512, advanced=True)
    assert (advanced.zoom_out, advanced.aspect_ratio, advanced.crop, advanced.resolution) == (0.5, 0.5, False, 512)
    seg, seg_val = get_default_by_task(Task.SEMSEG, (320, 480), advanced=True)
    assert (seg.max_size, seg.scale_ratio, seg.resolution, seg_val.square) == (2048, 1.0, (320, 480), 0.0)
    cls_train, cls_val = get_default_by_task(Task.CLASSIFICATION, 224)
    assert (cls_train.crop, cls_train.scale_ratio, cls_val.resolution) == (True, 0.5, 224)
    # Each call is independent (Focoos' module-level presets are not shared).
    train.horizontal_flip = 0.0
    assert get_default_by_task(Task.DETECTION)[0].horizontal_flip == 0.5
