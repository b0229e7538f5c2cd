"""Accuracy and latency of the bundled models under every way this package runs them, in one table.

    .venv/bin/python benchmarks/accuracy_per_runtime.py                  # all four bundled models
    .venv/bin/python benchmarks/accuracy_per_runtime.py --models fai-detr-n-digits --val-images 50

Each bundled model (the *-digits entries of focoos/registry, with their weights) is scored on held-out data made
by focoos.data.digits (digits its training never saw; the training canvases' generator with another seed) under:
eager fp32 (PyTorch), ONNX fp32 (ONNX Runtime), TorchScript, OpenVINO fp32, int8 (static QDQ, per-channel,
calibrated on `--calibration-images` training canvases; ONNX Runtime and OpenVINO on the same file), bf16
(OpenVINO, where the CPU computes bf16: else the row says why it is missing) and the served ensemble of each
precision this CPU computes (embedded tritonserver, the precision's engine in the network step, called through the
gRPC client). Every variant goes through the same
numpy postprocessing and scoring (pycocotools AP, mIoU, top-1); the latency beside each figure is the median
time of one image through the network alone (served: one request end to end, client side).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from focoos.training.evaluation import EVAL_TOP_K as TOP_K  # noqa: E402
from focoos.training.evaluation import PRIMARY_METRIC as METRIC  # noqa: E402

from focoos import DatasetLayout, ModelManager, RuntimeType, Task  # noqa: E402
from focoos.infer.pipeline import postprocess_outputs  # noqa: E402
from focoos.infer.runtimes import PRECISION_ENGINES  # noqa: E402
from focoos.ports import ModelInfo  # noqa: E402
from focoos.processing import DetectionArrays, preprocess_images  # noqa: E402

ENGINE_NAMES = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}
BUNDLED = ("fai-detr-n-digits", "fai-mf-n-digits-ins", "bisenetformer-n-digits-sem", "fai-cls-n-digits")
Outputs = Callable[[np.ndarray], dict[str, np.ndarray]]


# -- data
def make_data(model: str, info: ModelInfo, root: Path, val_images: int, calibration_images: int) -> tuple:
    """(validation MapDataset, calibration images): canvases (or digits) the model never trained on."""
    from focoos.data import AutoDataset, DatasetAugmentations
    from focoos.data.digits import load_mnist_digits, split_by_class
    from focoos.data.digits import main as make_canvases
    from focoos.ports import DatasetSplitType

    folder = root / model
    if info.task == Task.CLASSIFICATION:
        digits, labels, _ = load_mnist_digits()
        for split, pool in zip(("train", "valid"), split_by_class(labels), strict=True):
            rng = np.random.default_rng(5)
            count = calibration_images if split == "train" else val_images
            for index in rng.permutation(pool)[:count]:
                out = folder / split / str(int(labels[index]))
                out.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(out / f"{int(index):05d}.png"), digits[index])
        layout = DatasetLayout.CLS_FOLDER
    else:
        size = info.input_hw[0]
        make_canvases(["--out", str(folder), "--train-images", str(calibration_images), "--val-images",
                       str(val_images), "--size", str(size), "--seed", "7", "--semantic"])
        layout = DatasetLayout.ROBOFLOW_COCO
        if info.task == Task.SEMSEG:
            folder, layout = folder.with_name(folder.name + "_sem"), DatasetLayout.ROBOFLOW_SEG
    dataset = AutoDataset(dataset_name=folder.name, task=info.task, layout=layout, datasets_dir=folder.parent)
    augs = DatasetAugmentations(resolution=info.input_hw[0])
    calibration = sorted(p for p in (folder / "train").rglob("*") if p.suffix in (".jpg", ".png")
                         and not p.stem.endswith("_mask"))  # the training images alone: no split, no class check
    return dataset.get_split(augs, DatasetSplitType.VAL), [cv2.imread(str(p))[..., ::-1].copy() for p in calibration]


# -- scoring: one path for every variant (the training evaluator's)
def score(info: ModelInfo, dataset, predict: Callable[[np.ndarray], DetectionArrays]) -> tuple[float, float]:
    """(primary metric, median ms per image of `predict`)."""
    from focoos.training.evaluation import MetricAccumulator

    times, scores = [], MetricAccumulator(info, dataset)
    for i in range(len(dataset)):
        image = dataset.original_image(i)
        start = time.perf_counter()
        result = predict(image)
        times.append((time.perf_counter() - start) * 1000)
        scores.add(i, result, image.shape[:2])
    return scores.metrics()[METRIC[info.task]], statistics.median(times)


def local_predict(info: ModelInfo, outputs: Outputs, timings: list[float]) -> Callable[[np.ndarray], DetectionArrays]:
    """predict() over a network callable, timing the network alone into `timings`."""

    def predict(image: np.ndarray) -> DetectionArrays:
        batch = preprocess_images([image], info.input_hw)
        start = time.perf_counter()
        raw = outputs(batch)
        timings.append((time.perf_counter() - start) * 1000)
        if info.task == Task.CLASSIFICATION:
            logits = raw["logits"][0]
            return DetectionArrays(None, logits, np.arange(len(logits)))
        top_k = None if info.task == Task.SEMSEG else TOP_K
        return postprocess_outputs(info, raw, [image.shape[:2]], 0.0, top_k)[0]

    return predict


def served_predict(client) -> Callable[[np.ndarray], DetectionArrays]:
    from focoos.training.evaluation import detection_arrays

    return lambda image: detection_arrays(client.infer(image, threshold=0.0))


# -- variants
def torch_outputs(model) -> Outputs:
    import torch

    network = model.model.eval()

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            out = network(torch.from_numpy(batch))
        out = (out,) if isinstance(out, torch.Tensor) else out
        return {name: o.float().numpy() for name, o in zip(network.output_names, out, strict=True)}

    return run


def variants(model, work: Path, calibration: list[np.ndarray], threads: int) -> dict[str, Outputs | str]:
    """Name -> network callable, or the reason it cannot run here."""
    import onnxruntime as ort

    from focoos.infer.quantizer import OnnxQuantizer, QuantizationCfg
    from focoos.infer.runtimes import OpenVinoRuntime, TorchscriptRuntime, cpu_precisions

    onnx = model.export(runtime_type=RuntimeType.ONNX_CPU, out_dir=work / "onnx", dynamic_axes=False)
    script = model.export(runtime_type=RuntimeType.TORCHSCRIPT_32, out_dir=work / "ts", dynamic_axes=False)
    cfg = QuantizationCfg(calibration_images_folder="", size=model.model_info.input_hw[0], format="QDQ",
                          per_channel=True, data_reader_limit=len(calibration))
    int8_path = OnnxQuantizer(cfg, onnx.model_path, images=calibration).quantize(benchmark=False)

    def ort_session(path: Path) -> Outputs:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return lambda batch: dict(zip(names, session.run(names, {session.get_inputs()[0].name: batch}), strict=True))

    found: dict[str, Outputs | str] = {
        "eager fp32": torch_outputs(model),
        "ONNX fp32 (ONNX Runtime)": ort_session(onnx.model_path),
        "TorchScript": TorchscriptRuntime(script.model_path, device="cpu"),
    }
    try:
        found["ONNX fp32 (OpenVINO)"] = OpenVinoRuntime(onnx.model_path, "fp32", threads)
        found["int8 QDQ (OpenVINO)"] = OpenVinoRuntime(int8_path, "fp32", threads)
    except Exception as exc:  # noqa: BLE001 - reported in the table
        found["ONNX fp32 (OpenVINO)"] = f"n/a: {exc}"
    found["int8 QDQ (ONNX Runtime)"] = ort_session(int8_path)
    if "bf16" in cpu_precisions():
        found["bf16 (OpenVINO)"] = OpenVinoRuntime(onnx.model_path, "bf16", threads)
    else:
        found["bf16 (OpenVINO)"] = f"n/a: this CPU has no native bf16 (computes {', '.join(sorted(cpu_precisions()))})"
    return found


def served(model, work: Path, calibration: list[np.ndarray]) -> tuple:
    """A tritonserver serving the model once per precision this CPU computes (ensembles named by precision)."""
    import warnings

    from focoos.builder import RepositoryBuilder, TritonServer

    from focoos.infer.runtimes import cpu_precisions

    folder = work / "calibration"
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(calibration):
        cv2.imwrite(str(folder / f"{i}.png"), image[..., ::-1])
    precisions = [p for p in PRECISION_ENGINES if p != "bf16" or "bf16" in cpu_precisions()]
    builder = RepositoryBuilder(work / "repository")
    for precision in precisions:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # int8 without VNNI: known, and in the table
            builder.add(model, runtime_type=RuntimeType.ONNX_CPU, name=precision, target="embedded",
                        top_k=None if model.task != Task.DETECTION else TOP_K, precision=precision,
                        calibration_images=folder if precision == "int8" else None)
    return TritonServer(work / "repository").start(), precisions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(BUNDLED), choices=BUNDLED)
    parser.add_argument("--val-images", type=int, default=200, help="held-out canvases (classifier: digits x5)")
    parser.add_argument("--calibration-images", type=int, default=32, help="training canvases for int8 calibration")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: every core)")
    parser.add_argument("--no-served", action="store_true", help="skip the tritonserver ensemble")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the quantizer's per-op notes would bury the table
    os.environ.setdefault("FOCOOS_OFFLINE", "1")

    rows = []
    with tempfile.TemporaryDirectory(prefix="accuracy-") as tmp:
        root = Path(tmp)
        for name in args.models:
            model = ModelManager.get(name, device="cpu")
            info = model.model_info
            count = args.val_images * (5 if info.task == Task.CLASSIFICATION else 1)
            dataset, calibration = make_data(name, info, root / "data", count, args.calibration_images)
            for variant, outputs in variants(model, root / name, calibration, args.threads).items():
                if isinstance(outputs, str):
                    rows.append((name, METRIC[info.task], variant, outputs, ""))
                    continue
                network_ms: list[float] = []
                with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its summary
                    value, _ = score(info, dataset, local_predict(info, outputs, network_ms))
                rows.append((name, METRIC[info.task], variant, f"{value:.1f}", f"{statistics.median(network_ms):.1f}"))
                print(*rows[-1], sep=" | ", flush=True)
            if not args.no_served:
                from focoos.client import TritonInferModel

                server, precisions = served(model, root / name, calibration)
                try:
                    for precision in precisions:
                        with TritonInferModel(server.grpc_url, precision) as client, \
                                contextlib.redirect_stdout(io.StringIO()):
                            value, ms = score(info, dataset, served_predict(client))
                        label = f"served ensemble, {precision} ({ENGINE_NAMES[PRECISION_ENGINES[precision]]})"
                        rows.append((name, METRIC[info.task], label, f"{value:.1f}", f"{ms:.1f}"))
                        print(*rows[-1], sep=" | ", flush=True)
                finally:
                    server.stop()
    print()
    print("| model | metric | runtime | value | ms / image |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
