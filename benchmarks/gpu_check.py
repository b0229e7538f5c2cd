"""GPU check of the embedded network step: TensorRT FP16, CUDA FP32 and TorchScript on CUDA, served and in-process.

    .venv/bin/python benchmarks/gpu_check.py [--requests 50] [--out gpu_check.md]

For fai-detr-m-coco (random weights unless Focoos' are cached) and the bundled instance segmenter
fai-mf-n-digits-ins it builds one embedded repository per runtime (onnx_trt16, onnx_cuda32, torchscript_32: the
python backend of nvidia-pytriton's tritonserver runs ONNX Runtime's TensorRT/CUDA providers and TorchScript on
the instance's GPU), serves it, checks that TensorRT FP16's detections match CUDA FP32's (same class, IoU >= 0.9,
score within 0.02) and times requests through the gRPC client against InferModel in-process with the same
runtime type. It prints one table. On a machine without a GPU it builds and validates the same repositories
(configs parse, GPU instances, TensorRT options, engine cache in the version folder), says so and exits 0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from focoos import ModelManager, RuntimeType  # noqa: E402
from focoos.samples import digit_canvases  # noqa: E402

MODELS = ("fai-detr-m-coco", "fai-mf-n-digits-ins")
RUNTIMES = (RuntimeType.ONNX_TRT16, RuntimeType.ONNX_CUDA32, RuntimeType.TORCHSCRIPT_32)
MATCH_IOU, SCORE_TOLERANCE, THRESHOLD = 0.9, 0.02, 0.3


def gpu_available() -> tuple[bool, str]:
    """Whether ONNX Runtime's CUDA and TensorRT providers and torch's CUDA are all here, and what is missing."""
    missing = []
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
        missing += [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p not in providers]
    except ImportError:
        missing.append("onnxruntime")
    try:
        import torch

        if not torch.cuda.is_available():
            missing.append("torch CUDA device")
    except ImportError:
        missing.append("torch")
    return not missing, ", ".join(missing)


def build(model, runtime_type: RuntimeType, root: Path, name: str):
    from focoos.builder import RepositoryBuilder

    builder = RepositoryBuilder(root)
    builder.add(model, runtime_type=runtime_type, name=name, target="embedded", max_batch_size=4,
                allow_random_weights=True)
    return builder


def check_configs(builder, name: str, runtime_type: RuntimeType) -> list[str]:
    """Problems in what a GPU server would load (empty: as intended)."""
    import json

    from focoos.builder.configs import read_config

    problems = list(builder.validate())
    config = read_config(builder.root / f"{name}_model")
    kind = config.instance_group[0].kind
    params = {k: v.string_value for k, v in config.parameters.items()}
    if params.get("runtime_type") != runtime_type.value:
        problems.append(f"{name}: runtime_type {params.get('runtime_type')}")
    if runtime_type == RuntimeType.TORCHSCRIPT_32:
        if kind != config.instance_group[0].KIND_AUTO:
            problems.append(f"{name}: TorchScript instance kind {kind}, expected KIND_AUTO")
    elif kind != config.instance_group[0].KIND_GPU:
        problems.append(f"{name}: instance kind {kind}, expected KIND_GPU")
    if runtime_type == RuntimeType.ONNX_TRT16:
        options = json.loads(params.get("tensorrt_options", "{}"))
        if not options.get("trt_fp16_enable") or "trt_profile_max_shapes" not in options:
            problems.append(f"{name}: TensorRT options {options}")
    return problems


def matched(reference: list, candidate: list) -> tuple[float, float]:
    """(share of reference detections found in candidate, largest score difference among the found)."""
    found, worst = 0, 0.0
    for det in reference:
        best = None
        for other in candidate:
            if other.cls_id != det.cls_id:
                continue
            iou = _iou(det.bbox, other.bbox)
            if iou >= MATCH_IOU and (best is None or iou > best[0]):
                best = (iou, other)
        if best is not None and abs(best[1].conf - det.conf) <= SCORE_TOLERANCE:
            found += 1
            worst = max(worst, abs(best[1].conf - det.conf))
    return (found / len(reference) if reference else 1.0), worst


def _iou(a: list[int], b: list[int]) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def timed(fn, images: list[np.ndarray], requests: int) -> tuple[float, list]:
    results = [fn(image) for image in images]  # warm-up (TensorRT builds its engine here) and answers
    times = []
    for i in range(requests):
        start = time.perf_counter()
        fn(images[i % len(images)])
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--out", type=Path, help="also write the table here (markdown)")
    args = parser.parse_args(argv)
    os.environ.setdefault("FOCOOS_OFFLINE", "1")
    gpu, missing = gpu_available()
    rows, problems = [], []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for model_name in MODELS:
            model = ModelManager.get(model_name, allow_random_weights=True, device="cpu")
            size = model.model_info.input_hw[0]
            images = list(digit_canvases(4, size=size).values())
            answers = {}
            for runtime_type in RUNTIMES:
                name = f"{model_name.replace('-', '_')}_{runtime_type.value}"
                builder = build(model, runtime_type, Path(tmp) / name, name)
                problems += check_configs(builder, name, runtime_type)
                if not gpu:
                    rows.append((model_name, runtime_type.value, "config valid", "-", "-", "-"))
                    continue
                from focoos.builder import TritonServer
                from focoos.client import TritonInferModel

                local = model.export(runtime_type=runtime_type, out_dir=Path(tmp) / f"{name}_export",
                                     allow_random_weights=True, device="cuda")
                local_ms, _ = timed(lambda im, m=local: m.infer(im, threshold=THRESHOLD), images, args.requests)
                with TritonServer(builder.root) as server, TritonInferModel(server.grpc_url, name) as client:
                    served_ms, results = timed(lambda im, c=client: c.infer(im, threshold=THRESHOLD), images,
                                               args.requests)
                answers[runtime_type] = [r.detections for r in results]
                rows.append((model_name, runtime_type.value, "served", f"{served_ms:.1f}", f"{local_ms:.1f}",
                             f"{served_ms / local_ms:.2f}"))
            if gpu:
                shares = [matched(ref, cand) for ref, cand in zip(answers[RuntimeType.ONNX_CUDA32],
                                                                  answers[RuntimeType.ONNX_TRT16], strict=True)]
                share = float(np.mean([s for s, _ in shares]))
                worst = max(w for _, w in shares)
                rows.append((model_name, "trt16 vs cuda32", f"{100 * share:.0f}% of fp32 detections matched",
                             f"max score diff {worst:.3f}", "-", "-"))
                if share < 0.9:
                    problems.append(f"{model_name}: TensorRT FP16 matched {100 * share:.0f}% of FP32's detections")
    lines = ["| model | runtime | check | served p50 ms | in-process p50 ms | served / in-process |",
             "|---|---|---|---|---|---|"] + ["| " + " | ".join(row) + " |" for row in rows]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    if not gpu:
        print(f"no GPU here ({missing} missing): configs built and validated, nothing timed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
