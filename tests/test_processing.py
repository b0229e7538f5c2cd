"""The numpy processing shared by every runner: image loading, resizing, postprocessing, padding."""

from __future__ import annotations

import ast
import io
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import focoos.processing as processing
from focoos.errors import InvalidInputError, UnsupportedFamilyError
from focoos.infer.pipeline import model_top_k
from focoos.processing import (
    decode_image,
    encode_image,
    load_image,
    load_images,
    pad_detections,
    postprocess_classification,
    postprocess_detr,
    preprocess_images,
    unpad_detections,
)


def test_processing_imports_only_numpy_opencv_pillow_and_itself():
    """The builder copies this folder next to Triton models: it must stay self-contained."""
    allowed = {"numpy", "cv2", "PIL", "__future__", "typing", "colorsys", "io", "urllib", "pathlib"}
    allowed |= {"base64", "binascii", "collections"}
    for path in Path(processing.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = set() if node.level > 0 else {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"


def test_every_input_kind_gives_the_same_rgb_pixels(scene, image_path):
    png = encode_image(scene, ".png")
    expected = scene
    candidates = {
        "path str": str(image_path.with_suffix(".png")),
        "bytes": png,
        "numpy": scene,
        "pil": Image.fromarray(scene),
        "torch uint8 chw": torch.from_numpy(scene).permute(2, 0, 1),
        "torch float chw": torch.from_numpy(scene).permute(2, 0, 1).float() / 255.0,
        "file object": io.BytesIO(png),
    }
    Path(candidates["path str"]).write_bytes(png)
    for kind, source in candidates.items():
        np.testing.assert_array_equal(load_image(source), expected, err_msg=kind)


def test_grey_and_rgba_arrays_become_rgb(scene):
    assert load_image(scene[:, :, 0]).shape == (*scene.shape[:2], 3)
    rgba = np.concatenate([scene, np.full(scene.shape[:2] + (1,), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(load_image(rgba), scene)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/no/such/image.jpg", "not found"),
        (b"", "empty"),
        (b"\xff\xd8\xff\xe0 definitely not a jpeg", "cannot decode"),
        (12345, "unsupported image type int"),
        (np.zeros((4, 4, 5), np.uint8), "shape"),
        (np.array([["a"]]), "dtype"),
        ([], "empty list"),
    ],
)
def test_bad_images_raise_a_typed_error_naming_the_problem(source, message):
    with pytest.raises(InvalidInputError, match=message):
        load_images(source)


def test_corrupt_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(InvalidInputError, match="broken.jpg"):
        load_image(bad)


def test_huge_image_is_refused_before_decoding():
    header_only = Image.new("L", (1, 1))
    buf = io.BytesIO()
    header_only.save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = (20000).to_bytes(4, "big") + (20000).to_bytes(4, "big")  # IHDR width, height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # keep the header chunk valid
    with pytest.raises(InvalidInputError, match="exceeds"):
        decode_image(bytes(data))


def test_preprocess_resizes_in_float_like_torch_bilinear(scene):
    """Focoos resizes with torch's bilinear interpolate on float pixels: ours gives the same values."""
    import torch

    batch = preprocess_images([scene, scene[:100]], (64, 96))
    assert batch.shape == (2, 3, 64, 96) and batch.dtype == np.float32
    pixels = torch.from_numpy(scene).permute(2, 0, 1)[None].float()
    expected = torch.nn.functional.interpolate(pixels, size=(64, 96), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(batch[:1], expected.numpy(), atol=1e-2)  # 4e-5 of the 0..255 range


def test_preprocess_at_native_size_needs_one_size(scene):
    np.testing.assert_array_equal(preprocess_images([scene], None)[0].transpose(1, 2, 0), scene)
    with pytest.raises(InvalidInputError, match="different sizes"):
        preprocess_images([scene, scene[:100]], None)


def test_detr_postprocess_scales_boxes_and_applies_threshold_and_top_k():
    boxes = np.array([[[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.7, 0.9]]], np.float32)
    scores = np.array([[[0.9, 0.1], [0.2, 0.7], [0.3, 0.4]]], np.float32)  # [1, Q=3, C=2]
    (res,) = postprocess_detr(boxes, scores, [(200, 100)], threshold=0.35)
    np.testing.assert_allclose(res.scores, [0.9, 0.7, 0.4])
    np.testing.assert_array_equal(res.classes, [0, 1, 1])
    np.testing.assert_allclose(res.boxes[0], [10, 40, 50, 120])
    np.testing.assert_allclose(res.boxes[1], [0, 0, 100, 200])
    (top2,) = postprocess_detr(boxes, scores, [(200, 100)], threshold=0.0, top_k=2)
    np.testing.assert_allclose(top2.scores, [0.9, 0.7])


@pytest.mark.parametrize("threshold", [-0.1, 1.5, "high", None])
def test_threshold_outside_unit_interval_is_refused(threshold):
    with pytest.raises(InvalidInputError, match="threshold"):
        postprocess_classification(np.zeros((1, 3), np.float32), threshold=threshold)


def test_classification_is_multilabel_sorted_and_capped():
    logits = np.array([[2.0, -3.0, 0.5, 1.0]], np.float32)
    (res,) = postprocess_classification(logits, threshold=0.5, top_k=2)
    np.testing.assert_array_equal(res.classes, [0, 3])
    assert res.boxes is None


def test_pad_and_unpad_round_trip():
    boxes = np.random.default_rng(0).random((1, 5, 4)).astype(np.float32)
    scores = np.random.default_rng(1).random((1, 5, 3)).astype(np.float32)
    results = postprocess_detr(boxes, scores, [(50, 60)], threshold=0.2)
    num, pboxes, pscores, pclasses = pad_detections(results, top_k=20)
    assert pboxes.shape == (1, 20, 4) and num[0, 0] == len(results[0].scores)
    (back,) = unpad_detections(num, pboxes, pscores, pclasses)
    np.testing.assert_allclose(back.boxes, results[0].boxes)
    np.testing.assert_array_equal(back.classes, results[0].classes)


def test_detr_nms_iou_drops_stacked_boxes_of_one_class_only_when_configured():
    boxes = np.array([[[0.1, 0.1, 0.5, 0.5], [0.11, 0.1, 0.5, 0.5], [0.1, 0.1, 0.5, 0.5]]], np.float32)
    scores = np.array([[[0.9, 0.0], [0.8, 0.0], [0.0, 0.7]]], np.float32)  # two class-0 boxes stacked
    (plain,) = postprocess_detr(boxes, scores, [(100, 100)], threshold=0.5)
    assert plain.classes.tolist() == [0, 0, 1]  # Focoos' rule: no suppression
    (kept,) = postprocess_detr(boxes, scores, [(100, 100)], threshold=0.5, nms_iou=0.7)
    assert kept.classes.tolist() == [0, 1] and kept.scores.tolist() == pytest.approx([0.9, 0.7])


def test_classification_keeps_every_class_unless_capped():
    logits = np.array([[2.0, -3.0, 0.5, 1.0]], np.float32)
    (res,) = postprocess_classification(logits, threshold=0.0)
    np.testing.assert_array_equal(res.classes, [0, 3, 2, 1])


@pytest.mark.parametrize("task", ["detection", "classification", "instseg", "semseg"])
def test_padded_outputs_are_the_task_outputs_in_order(task):
    from focoos.processing import DetectionArrays, encode_mask, pad_task_outputs
    from focoos.processing.transport import task_outputs

    masks = [encode_mask(np.ones((2, 3), bool))] if task in ("instseg", "semseg") else None
    boxes = None if task == "classification" else np.array([[1, 2, 4, 4]], np.float32)
    result = DetectionArrays(boxes, np.array([0.9], np.float32), np.array([2]), masks)
    padded = pad_task_outputs(task, [result], top_k=5)
    assert tuple(padded) == task_outputs(task)
    assert padded["NUM_DETECTIONS"].tolist() == [[1]] and padded["SCORES"].shape == (1, 5)
    assert ("MASKS" in padded) == (masks is not None) and ("BOXES" in padded) == (boxes is not None)


def test_serving_defaults_come_from_the_family_spec():
    from focoos.models import family_spec
    from focoos.ports import ModelInfo

    def info(family: str, task: str, config: dict) -> ModelInfo:
        return ModelInfo(name="m", model_family=family, task=task, classes=["a", "b", "c"], im_size=64, config=config)

    assert model_top_k(info("fai_detr", "detection", {})) == family_spec("fai_detr").top_k == 300
    assert model_top_k(info("fai_mf", "instseg", {"top_k": 7})) == 7
    assert model_top_k(info("fai_cls", "classification", {})) == 3  # every class
    assert family_spec("fai_detr").outputs(info("fai_detr", "detection", {"num_queries": 9}))["boxes"] == [9, 4]
    with pytest.raises(UnsupportedFamilyError, match="depth"):
        family_spec("depth")


def test_native_size_keeps_sizes_up_to_the_bound_and_refuses_mixed_sizes():
    from focoos.processing.preprocess import native_size

    small, large = np.zeros((30, 40, 3), np.uint8), np.zeros((300, 400, 3), np.uint8)
    assert native_size([small, small], 1200) is None  # their own size
    assert native_size([large], 1200) == (30, 40)  # scaled down to the bound, aspect kept
    with pytest.raises(InvalidInputError, match="own size"):
        native_size([small, large], 10**6)


def test_semantic_results_are_drawn_without_boxes(scene):
    from focoos.ports import FocoosDet, FocoosDetections
    from focoos.processing import encode_mask, to_base64
    from focoos.processing.annotate import annotate_detections

    mask = to_base64(encode_mask(np.zeros((40, 40), bool)))  # an empty region: only a box would show
    dets = FocoosDetections(detections=[FocoosDet(bbox=[10, 10, 50, 50], conf=0.9, cls_id=0, mask=mask)])
    boxed, unboxed = (annotate_detections(scene, dets, task) for task in ("instseg", "semseg"))
    below_label = (slice(30, 50), slice(10, 12))  # the box's left edge, under the label
    assert (boxed[below_label] != scene[below_label]).any()
    assert (unboxed[below_label] == scene[below_label]).all()
