"""ONNX Runtime against OpenVINO on the same ONNX graph, per serving precision: median latency, the ratio, the largest
output difference between the two, and the engine focoos.infer.runtimes.PRECISION_ENGINES serves it with.

    .venv/bin/python benchmarks/precision_engines.py                      # fai-detr-n-digits
    .venv/bin/python benchmarks/precision_engines.py --models fai-detr-n-digits fai-mf-n-digits-ins --iterations 100
    .venv/bin/python benchmarks/precision_engines.py --export             # the export's graph optimisation on/off
    .venv/bin/python benchmarks/precision_engines.py --served             # fp32 served by each engine, end to end

Batch 1 at the model's input size on digit canvases the model never trained on. The engines alternate call by call,
so a busy neighbour slows both alike. fp32 is the exported model.onnx; int8 the builder's file (static QDQ,
per-channel, calibrated on --calibration-images canvases); bf16 OpenVINO on model.onnx, compared with ONNX Runtime fp32
(ONNX Runtime has no bf16 CPU kernels), only where the CPU computes bf16. ONNX Runtime runs with the served network
step's session settings, OpenVINO with focoos.infer.runtimes.openvino_config (the served step's too).
--export: the same model exported with and without focoos.infer.export.optimize_onnx (ONNX Runtime's basic offline
graph optimisation, Focoos' simplify_onnx), both engines on both files.
--served: the model built twice into one repository (target embedded), its network step on each engine in fp32, and
called in turn through the gRPC client with JPEG canvases: the network step then shares the cores with decoding and
postprocessing, as it does when served.

The table serves each precision with the faster engine among those whose answers are equal. int8 moves the raw
outputs of both engines about as far from fp32 as from each other (the "vs fp32" column), so equal answers are judged
on the metric: benchmarks/accuracy_per_runtime.py scores both engines on the same int8 file. The figures the table was
chosen on are next to PRECISION_ENGINES in focoos/infer/runtimes.py.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from focoos import ModelManager, RuntimeType  # noqa: E402
from focoos.infer.runtimes import (  # noqa: E402
    BF16_CPU_FLAGS,
    INT8_CPU_FLAGS,
    PRECISION_ENGINES,
    OpenVinoRuntime,
    cpu_precisions,
)
from focoos.processing import preprocess_images  # noqa: E402

Engine = Callable[[np.ndarray], dict[str, np.ndarray]]


def cpu_line() -> str:
    """The CPU's model name and the precision flags that matter here."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = next((set(line.split(":", 1)[1].split()) for line in text.splitlines() if line.startswith("flags")), set())
    wanted = ("avx2", "avx512f", *INT8_CPU_FLAGS, *BF16_CPU_FLAGS)
    return f"{name}, {os.cpu_count()} cores, flags: {' '.join(f for f in wanted if f in flags) or 'none of note'}"


def canvases(size: int, count: int, seed: int) -> list[np.ndarray]:
    """Digit canvases from the held-out digits (the bundled models' own kind of image)."""
    from focoos.data.digits import draw_digits, load_mnist_digits, split_by_class

    digits, labels, _ = load_mnist_digits()
    _, pool = split_by_class(labels)
    rng = np.random.default_rng(seed)
    return [draw_digits(rng, digits, labels, pool, size, (2, 6), (1.0, 3.0))[0] for _ in range(count)]


def onnxruntime_engine(path: Path, threads: int) -> Engine:
    """ONNX Runtime's CPU provider with the served network step's session settings."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    input_name = session.get_inputs()[0].name
    return lambda batch: dict(zip(names, session.run(names, {input_name: batch}), strict=True))


def compare(engines: dict[str, Engine], batches: list[np.ndarray], iterations: int) -> tuple[dict, dict]:
    """(median ms per engine, largest |difference| per output between the first engine and each other)."""
    diffs: dict[str, dict[str, float]] = {name: {} for name in list(engines)[1:]}
    for batch in batches:
        first, *others = (run(batch) for run in engines.values())
        for name, outputs in zip(list(engines)[1:], others, strict=True):
            for key, value in first.items():
                diffs[name][key] = max(diffs[name].get(key, 0.0), float(np.abs(value - outputs[key]).max()))
    times: dict[str, list[float]] = {name: [] for name in engines}
    for i in range(iterations):
        for name, run in engines.items():
            start = time.perf_counter()
            run(batches[i % len(batches)])
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}, diffs


def _diff_text(diff: dict[str, float]) -> str:
    return ", ".join(f"{key} {value:.2g}" for key, value in diff.items())


def mean_deviation(run: Engine, reference: Engine, batches: list[np.ndarray]) -> str:
    """Mean |difference| per output from the fp32 reference: how far a precision moves the answers."""
    sums: dict[str, float] = {}
    for batch in batches:
        expected = reference(batch)
        for key, value in run(batch).items():
            sums[key] = sums.get(key, 0.0) + float(np.abs(value - expected[key]).mean()) / len(batches)
    return _diff_text(sums)


def precision_rows(model, work: Path, batches: list[np.ndarray], calibration: list[np.ndarray], threads: int,
                   iterations: int, dynamic_axes: bool) -> list[tuple[str, ...]]:
    from focoos.infer.quantizer import OnnxQuantizer, QuantizationCfg

    exported = model.export(runtime_type=RuntimeType.ONNX_CPU, out_dir=work / "onnx", dynamic_axes=dynamic_axes)
    cfg = QuantizationCfg(calibration_images_folder="", size=model.model_info.input_hw[0], format="QDQ",
                          per_channel=True, data_reader_limit=len(calibration))
    int8 = OnnxQuantizer(cfg, exported.model_path, images=calibration).quantize(benchmark=False)
    reference = onnxruntime_engine(exported.model_path, threads)
    rows = []
    for precision, path in (("fp32", exported.model_path), ("int8", int8), ("bf16", exported.model_path)):
        if precision == "bf16" and "bf16" not in cpu_precisions():
            rows.append((precision, "n/a", "n/a", "", f"this CPU has no {' / '.join(BF16_CPU_FLAGS)} (computes "
                         f"{', '.join(sorted(cpu_precisions()))})", "", "", PRECISION_ENGINES[precision]))
            continue
        # bf16: ONNX Runtime has no bf16 CPU kernels, so its column is fp32
        engines = {"onnxruntime": onnxruntime_engine(exported.model_path if precision == "bf16" else path, threads),
                   "openvino": OpenVinoRuntime(path, precision, threads)}
        medians, diffs = compare(engines, batches, iterations)
        ratio = medians["onnxruntime"] / medians["openvino"]
        faster = "openvino" if ratio > 1 else "onnxruntime"
        moved = "; ".join(f"{name} {mean_deviation(run, reference, batches)}" for name, run in engines.items())
        rows.append((precision, f"{medians['onnxruntime']:.2f}", f"{medians['openvino']:.2f}", f"{ratio:.2f}",
                     _diff_text(diffs["openvino"]), moved, faster, PRECISION_ENGINES[precision]))
        print(*rows[-1], sep=" | ", flush=True)
    return rows


def export_rows(model, work: Path, batches: list[np.ndarray], threads: int, iterations: int,
                dynamic_axes: bool) -> list[tuple[str, ...]]:
    """The export without and with optimize_onnx, each file under both engines."""
    import onnx

    files = {}
    for optimized in (False, True):
        exported = model.export(runtime_type=RuntimeType.ONNX_CPU, out_dir=work / f"export_{optimized}",
                                dynamic_axes=dynamic_axes, simplify_onnx=optimized)
        files["optimized" if optimized else "plain"] = exported.model_path
    engines: dict[str, Engine] = {}
    starts: dict[str, float] = {}
    for label, path in files.items():
        start = time.perf_counter()
        engines[f"onnxruntime {label}"] = onnxruntime_engine(path, threads)
        starts[f"onnxruntime {label}"] = time.perf_counter() - start
        start = time.perf_counter()
        engines[f"openvino {label}"] = OpenVinoRuntime(path, "fp32", threads)
        starts[f"openvino {label}"] = time.perf_counter() - start
    medians, diffs = compare(engines, batches, iterations)
    nodes = {label: len(onnx.load(str(path)).graph.node) for label, path in files.items()}
    rows = []
    for name in engines:
        engine, label = name.split()
        plain = medians[f"{engine} plain"]
        rows.append((name, str(nodes[label]), f"{starts[name]:.2f}", f"{medians[name]:.2f}",
                     f"{plain / medians[name]:.2f}", _diff_text(diffs[name]) if name in diffs else "reference"))
        print(*rows[-1], sep=" | ", flush=True)
    return rows


def served_rows(model, work: Path, images: list[np.ndarray], iterations: int) -> list[tuple[str, ...]]:
    """fp32 served end to end by each engine (openvino stands in PRECISION_ENGINES for fp32 while it builds)."""
    from unittest import mock

    from focoos.builder import RepositoryBuilder, TritonServer
    from focoos.client import TritonInferModel

    from focoos.processing import encode_image

    builder = RepositoryBuilder(work / "repository")
    for engine in ("onnxruntime", "openvino"):
        with mock.patch.dict(PRECISION_ENGINES, {"fp32": engine}):
            builder.add(model, name=engine, target="embedded")
    encoded = [encode_image(image, ".jpg") for image in images]
    times: dict[str, list[float]] = {"onnxruntime": [], "openvino": []}
    with TritonServer(work / "repository") as server:
        clients = {name: TritonInferModel(server.grpc_url, name) for name in times}
        for i in range(iterations + 5):  # the first calls of each warm up
            for name, client in clients.items():
                start = time.perf_counter()
                client.infer(encoded[i % len(encoded)], threshold=0.3)
                if i >= 5:
                    times[name].append((time.perf_counter() - start) * 1000)
        for client in clients.values():
            client.close()
    medians = {name: statistics.median(t) for name, t in times.items()}
    row = ("fp32", f"{medians['onnxruntime']:.2f}", f"{medians['openvino']:.2f}",
           f"{medians['onnxruntime'] / medians['openvino']:.2f}", PRECISION_ENGINES["fp32"])
    print(*row, sep=" | ", flush=True)
    return [row]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["fai-detr-n-digits"])
    parser.add_argument("--iterations", type=int, default=60, help="timed calls per engine")
    parser.add_argument("--images", type=int, default=8, help="canvases run (outputs compared on each)")
    parser.add_argument("--calibration-images", type=int, default=32, help="canvases int8 is calibrated on")
    parser.add_argument("--threads", type=int, default=0, help="threads per engine (0: each engine's default, "
                        "every core, as served)")
    parser.add_argument("--dynamic-axes", action="store_true", help="export with dynamic batch and size, as the "
                        "builder serves it (default: static)")
    parser.add_argument("--export", action="store_true", help="measure the export's graph optimisation instead")
    parser.add_argument("--served", action="store_true", help="measure fp32 served end to end by each engine instead")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the quantizer's per-op notes would bury the table
    os.environ.setdefault("FOCOOS_OFFLINE", "1")

    print(f"CPU: {cpu_line()}; OpenVINO sees {', '.join(sorted(cpu_precisions()))}", flush=True)
    tables = []
    with tempfile.TemporaryDirectory(prefix="precision-") as tmp:
        for name in args.models:
            model = ModelManager.get(name, device="cpu")
            size = model.model_info.input_hw[0]
            batches = [preprocess_images([image], model.model_info.input_hw)
                       for image in canvases(size, args.images, seed=11)]
            work = Path(tmp) / name
            if args.served:
                rows = served_rows(model, work, canvases(size, args.images, seed=11), args.iterations)
                header = ("precision", "served onnxruntime ms", "served openvino ms", "ort / ov", "PRECISION_ENGINES")
            elif args.export:
                rows = export_rows(model, work, batches, args.threads, args.iterations, args.dynamic_axes)
                header = ("engine and file", "nodes", "session start s", "ms / image", "plain / this",
                          "max |diff| vs onnxruntime plain")
            else:
                calibration = canvases(size, args.calibration_images, seed=7)
                rows = precision_rows(model, work, batches, calibration, args.threads, args.iterations,
                                      args.dynamic_axes)
                header = ("precision", "onnxruntime ms", "openvino ms", "ort / ov", "max |diff| ort vs ov",
                          "mean |diff| vs fp32", "faster here", "PRECISION_ENGINES")
            tables.append((name, header, rows))
    axes = "dynamic" if args.dynamic_axes or args.served else "static"  # the builder exports dynamic axes
    for name, header, rows in tables:
        threads = args.threads or "default"
        print(f"\n{name}, batch 1, {axes} axes, {args.iterations} calls per engine, threads {threads}")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
