"""focoos.infer.quantizer: Focoos' OnnxQuantizer/QuantizationCfg, and Focoos' quantization tutorial run unchanged."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from focoos import InferModel, RuntimeType
from focoos.infer.quantizer import OnnxQuantizer, QuantizationCfg, QuantizationError, dataset_images
from focoos.infer.runtimes import PRECISION_ENGINES
from tests.conftest import quiet_get

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "tests" / "focoos_docs" / "quantize_classification.py"
PHOTOS = ROOT / "tests" / "data" / "focoos_reference" / "images"
# Focoos 0.25's QuantizationCfg, field by field (ours adds op_types_to_quantize).
FOCOOS_DEFAULTS = {"data_reader_limit": 100, "normalize_images": True, "w_SNR": None, "a_SNR": None, "size": 512,
                   "format": "QDQ", "per_channel": True}


def test_cfg_has_focoos_fields_and_defaults():
    fields = {f.name: f.default for f in dataclasses.fields(QuantizationCfg)}
    assert fields["calibration_images_folder"] is dataclasses.MISSING
    assert {k: fields[k] for k in FOCOOS_DEFAULTS} == FOCOOS_DEFAULTS
    assert set(fields) - set(FOCOOS_DEFAULTS) == {"calibration_images_folder", "op_types_to_quantize"}


@pytest.fixture(scope="module")
def digits():
    """Held-out MNIST digits (RGB), the bundled classifier's validation data, and their labels."""
    from focoos.data.digits import load_mnist_digits, split_by_class

    images, labels, _ = load_mnist_digits()
    _, val_pool = split_by_class(labels)
    picked = val_pool[np.random.default_rng(0).permutation(len(val_pool))[:40]]
    return [cv2.cvtColor(images[i], cv2.COLOR_GRAY2RGB) for i in picked], labels[picked]


def test_int8_classifier_keeps_its_answers_and_runs_as_onnx_cpu(digits, tmp_path):
    images, labels = digits
    model = quiet_get("fai-cls-n-digits", device="cpu")
    exported = model.export(runtime_type=RuntimeType.ONNX_CPU, out_dir=tmp_path / "export", dynamic_axes=False)
    calibration = tmp_path / "valid" / "3"  # a dataset split folder: images are found in class sub-folders
    calibration.mkdir(parents=True)
    for i, image in enumerate(images[:8]):
        cv2.imwrite(str(calibration / f"{i}.png"), image)
        cv2.imwrite(str(calibration / f"{i}_mask.png"), image[..., 0] * 0)  # label maps are not calibration data
    cfg = QuantizationCfg(calibration_images_folder=str(tmp_path / "valid"), size=64)
    quantizer = OnnxQuantizer(cfg, exported.model_path)
    assert quantizer.data_reader.datasize == 8
    assert quantizer.data_reader.nhwc_data_list[0].max() > 200  # raw pixels: the graph normalises inside
    path = quantizer.quantize(benchmark=False)
    assert path == exported.model_path.with_name("model_int8.onnx") and path.is_file()
    int8 = InferModel(path, runtime_type=RuntimeType.ONNX_CPU)
    fp32_top1 = [exported.infer(im).detections[0].cls_id for im in images]
    int8_top1 = [int8.infer(im).detections[0].cls_id for im in images]
    agreement = np.mean(np.array(fp32_top1) == np.array(int8_top1))
    assert agreement >= 0.9, agreement
    assert np.mean(np.array(int8_top1) == labels) >= 0.85

    class Split:  # a dataset split: calibration straight from its images
        def __len__(self) -> int:
            return len(images)

        def original_image(self, i: int) -> np.ndarray:
            return images[i]

    from_split = OnnxQuantizer(cfg, exported.model_path, images=dataset_images(Split(), limit=4))
    assert from_split.data_reader.datasize == 4
    with pytest.raises(QuantizationError, match="no .* images"):
        OnnxQuantizer(QuantizationCfg(calibration_images_folder=str(tmp_path / "export")), exported.model_path)


def test_builder_serves_int8_on_request_and_records_it(digits, tmp_path):
    from focoos.builder import RepositoryBuilder
    from focoos.builder.configs import read_config
    from focoos.builder.repository import RepositoryError

    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for i, image in enumerate(digits[0][:4]):
        cv2.imwrite(str(calibration / f"{i}.png"), image)
    model = quiet_get("fai-cls-n-digits", device="cpu")
    builder = RepositoryBuilder(tmp_path / "repo")
    with pytest.warns(UserWarning, match="int8") if "int8" not in _precisions() else _nothing():
        builder.add(model, name="q", target="embedded", precision="int8", calibration_images=calibration)
    params = read_config(tmp_path / "repo" / "q").parameters
    assert params["precision"].string_value == "int8"
    assert params["engine"].string_value == PRECISION_ENGINES["int8"]
    assert read_config(tmp_path / "repo" / "q_model").parameters["engine"].string_value == PRECISION_ENGINES["int8"]
    assert b"QuantizeLinear" in (tmp_path / "repo" / "q_model" / "1" / "model.onnx").read_bytes()
    for kwargs, why in (({"precision": "fp16"}, "precision must be one of fp32, int8, bf16"),
                        ({"precision": "int8"}, "needs calibration_images"),
                        ({"precision": "int8", "runtime_type": RuntimeType.TORCHSCRIPT_32,
                          "calibration_images": calibration}, "runs on onnx_cpu"),
                        ({"precision": "bf16", "runtime_type": RuntimeType.TORCHSCRIPT_32}, "runs on onnx_cpu")):
        with pytest.raises(RepositoryError, match=why):
            builder.add(model, name="bad", target="embedded", **kwargs)


def _precisions() -> set[str]:
    from focoos.infer.runtimes import cpu_precisions

    return cpu_precisions()


def _nothing():
    import contextlib

    return contextlib.nullcontext()


@pytest.mark.slow
def test_focoos_quantization_tutorial_runs_unchanged(tmp_path):
    """tutorials/quantize_classification.ipynb with local photos as its assets and its weights in the cache."""
    from focoos import ModelRegistry
    from focoos.weights import cached_weights_path, save_checkpoint

    cache, assets = tmp_path / "cache", tmp_path / "assets"
    assets.mkdir()
    for photo in PHOTOS.glob("*.jpg"):
        shutil.copy(photo, assets / photo.name)
    shutil.copy(PHOTOS / "astronaut.jpg", assets / "federer.jpg")  # the tutorial's photo of a person
    uri = ModelRegistry.get_model_info("fai-cls-n-coco").weights_uri
    os.environ["FOCOOS_CACHE_DIR"], previous = str(cache), os.environ.get("FOCOOS_CACHE_DIR")
    try:
        save_checkpoint(quiet_get("fai-cls-n-coco", device="cpu").model, cached_weights_path(uri))
    finally:
        if previous is None:
            del os.environ["FOCOOS_CACHE_DIR"]
        else:
            os.environ["FOCOOS_CACHE_DIR"] = previous
    env = {**os.environ, "FOCOOS_CACHE_DIR": str(cache), "FOCOOS_ASSETS_DIR": str(assets),
           "FOCOOS_MODELS_DIR": str(tmp_path / "models"), "OMP_NUM_THREADS": "2", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, str(TUTORIAL)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    folder = tmp_path / "models" / "my_edge_model"
    assert (folder / "model.onnx").is_file() and (folder / "model_int8.onnx").is_file()
    assert "QLinearConv" in (folder / "model_int8.onnx").read_bytes().decode("latin-1")  # format="QO"


def test_cli_build_takes_the_precision_and_refuses_int8_without_calibration(tmp_path, capsys):
    from focoos.cli import main

    code = main(["build", "--model", "fai-detr-n-digits", "--target", "embedded", "--precision", "int8",
                 "--repository", str(tmp_path / "repository")])
    assert code == 2 and "calibration_images" in capsys.readouterr().err
    assert not (tmp_path / "repository" / "fai-detr-n-digits").exists()
