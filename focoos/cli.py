"""The `focoos` command: the composition root, importing each part inside the command that needs it."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from focoos.errors import FocoosError
from focoos.ports import RuntimeType

DEMO_MODEL = "fai-detr-n-digits"  # the bundled detector trained here (scripts/train_bundled_digits.py)


def _cmd_models(args: argparse.Namespace) -> int:
    from focoos.model_registry import ModelRegistry

    rows = []
    for name in ModelRegistry.list_models():
        info = ModelRegistry.get_model_info(name)
        rows.append(
            (
                name,
                info.task.value,
                info.model_family.value,
                str(info.im_size),
                str(info.num_classes),
                "yes" if info.weights_uri else "no",
            )
        )
    if args.json:
        keys = ("name", "task", "family", "im_size", "classes", "weights")
        print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2))
        return 0
    header = ("NAME", "TASK", "FAMILY", "IM_SIZE", "CLASSES", "WEIGHTS")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return 0


def _load(args: argparse.Namespace):
    from focoos.model_manager import ModelManager

    overrides = {"im_size": args.im_size} if getattr(args, "im_size", None) else {}
    return ModelManager.get(args.model, device=args.device, **overrides)


def _print_detections(det) -> None:
    with_masks = any(d.mask for d in det.detections)
    print(f"{'LABEL':<20} {'CONF':>6}  BBOX (xyxy px)" + ("                 MASK PIXELS" if with_masks else ""))
    for d in det.detections:
        line = f"{d.label or d.cls_id:<20} {d.conf:>6.3f}  {d.bbox}"
        if d.mask:
            from focoos.processing import decode_mask

            line = f"{line:<60} {int(decode_mask(d.mask).sum())}"
        print(line)
    if not det.detections:
        print("(no detections over the threshold)")
    if det.latency:
        print(f"latency ms: {det.latency.model_dump(exclude_none=True)}")


def _write_rgb(path: Path, image) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def _cmd_predict(args: argparse.Namespace) -> int:
    annotate = args.output is not None
    if args.url:
        from focoos.client import TritonInferModel

        with TritonInferModel(args.url, model_name=args.model) as model:
            det = model.infer(args.image, threshold=args.threshold, annotate=annotate)
    else:
        model = _load(args)
        if args.runtime:
            model = model.export(runtime_type=RuntimeType(args.runtime), out_dir=args.export_dir)
        det = model.infer(args.image, threshold=args.threshold, annotate=annotate)
    _print_detections(det)
    if annotate:
        _write_rgb(Path(args.output), det.image)
        print(f"annotated image: {args.output}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """Build -> serve on the embedded tritonserver -> call over gRPC -> print and annotate -> stop."""
    import threading
    import warnings

    from focoos.builder.repository import RepositoryBuilder
    from focoos.builder.server import TritonServer
    from focoos.client import TritonInferModel
    from focoos.model_manager import ModelManager, NoWeightsWarning
    from focoos.processing import encode_image
    from focoos.samples import digit_canvases, sample_images

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoWeightsWarning)
        model = ModelManager.get(args.model, device="cpu", **({"im_size": args.im_size} if args.im_size else {}))
    if caught:
        print(f"warning: {caught[0].message}")
    repo = RepositoryBuilder(args.repository)
    if args.name in [m.name for m in repo.list()]:
        repo.remove(args.name)  # the demo owns this name: rebuild it from scratch
    served = repo.add(model, runtime_type=RuntimeType.ONNX_CPU, name=args.name, target="embedded", max_batch_size=4)
    print(f"built '{served.name}' from {model.name} into {args.repository} (ONNX Runtime step, python backend)")

    with TritonServer(args.repository, grpc_port=args.grpc_port) as server:
        print(f"tritonserver ready: grpc {server.grpc_url}, metrics {server.metrics_url}")
        with TritonInferModel(server.grpc_url, model_name=served.name) as client:
            trained_on_digits = (model.model_info.val_dataset or "").startswith("digits")
            samples = digit_canvases() if trained_on_digits else sample_images()
            for name, image in samples.items():
                det = client.infer(encode_image(image), threshold=args.threshold, annotate=True)
                print(f"\n== {name} ({image.shape[1]}x{image.shape[0]})")
                _print_detections(det)
                out = Path(args.output_dir) / f"{name}.jpg"
                _write_rgb(out, det.image)
                print(f"annotated: {out}")
        print(f"\nfrom another process: TritonInferModel('{server.grpc_url}', model_name='{served.name}')"
              f".infer('image.jpg')  or  focoos predict --url {server.grpc_url} --model {served.name} --image IMG")
        if args.keep_serving:
            print("serving until Ctrl-C", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    print("server stopped")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    model = _load(args)
    infer_model = model.export(
        runtime_type=RuntimeType(args.runtime),
        out_dir=args.out_dir,
        onnx_opset=args.opset,
        image_size=args.image_size,
    )
    print(f"exported {model.name} as {args.runtime} to {infer_model.model_dir}")
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    model = _load(args)
    metrics = model.benchmark(iterations=args.iterations, size=args.size)
    print(metrics.model_dump_json(indent=2))
    if args.runtime:
        exported = model.export(runtime_type=RuntimeType(args.runtime), out_dir=args.export_dir)
        print(exported.benchmark(iterations=args.iterations, size=args.size).model_dump_json(indent=2))
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from focoos.builder.repository import RepositoryBuilder

    repo = RepositoryBuilder(args.repository)
    if args.check:
        problems = repo.validate()
        for served in repo.list():
            print(f"{served.name}: versions {served.versions}, {served.task}, {served.runtime_type} ({served.target})")
        for problem in problems:
            print(f"problem: {problem}", file=sys.stderr)
        return 1 if problems else 0
    if not args.model:
        raise FocoosError("focoos build needs --model (or --check)")
    served = repo.add(
        _load(args), runtime_type=RuntimeType(args.runtime), name=args.name, target=args.target,
        max_batch_size=args.max_batch_size,
    )
    print(f"built {served.name} version {served.versions[-1]} ({served.runtime_type}, {served.target}) "
          f"in {args.repository}")
    if args.prebuild_engine:
        from focoos.builder.tensorrt import prebuild_engine_cache

        cache = prebuild_engine_cache(args.repository, served.name, args.prebuild_engine / served.name)
        print(f"TensorRT engine cache for {served.name}: {cache} (mount it at the config's trt_engine_cache_path)")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from focoos.builder.server import TritonServer

    with TritonServer(args.repository, grpc_port=args.grpc_port, http_port=args.http_port,
                      metrics_port=args.metrics_port, host=args.host) as server:
        print(f"serving {args.repository}: grpc {server.grpc_url}, http {server.http_url}, "
              f"metrics {server.metrics_url} (Ctrl-C stops)", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(0.5) and server.live():
                pass
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from focoos.data import AutoDataset, DatasetAugmentations
    from focoos.ports import DatasetLayout, DatasetSplitType, TrainerArgs

    model = _load(args)
    dataset_dir = Path(args.dataset)
    dataset = AutoDataset(dataset_name=dataset_dir.name, task=model.task, layout=DatasetLayout(args.layout),
                          datasets_dir=dataset_dir.parent)
    resolution = args.im_size or model.resolution[0]
    train_split = dataset.get_split(DatasetAugmentations(resolution=resolution, horizontal_flip=args.hflip),
                                    DatasetSplitType.TRAIN)
    val_split = dataset.get_split(DatasetAugmentations(resolution=resolution), DatasetSplitType.VAL)
    trainer_args = TrainerArgs(
        run_name=args.run_name, output_dir=str(args.output_dir), max_iters=args.max_iters, batch_size=args.batch_size,
        learning_rate=args.learning_rate, num_gpus=args.num_gpus, eval_period=args.eval_period, resume=args.resume,
        workers=args.workers, checkpointer_period=args.checkpointer_period,
    )
    info = model.train(trainer_args, train_split, val_split)
    print(f"trained {info.name}: {info.val_metrics} -> {Path(args.output_dir) / args.run_name}")
    return 0


def _cmd_version(args: argparse.Namespace) -> int:
    from focoos import __version__

    print(__version__)
    return 0


def _bench(bench_argv: list[str]) -> int:
    """The bench parses its own options, so gRPC is imported only when `focoos bench` runs."""
    from focoos.client.bench import add_bench_arguments, bench_command

    parser = argparse.ArgumentParser(prog="focoos bench", description="load a served model over gRPC")
    add_bench_arguments(parser)
    return bench_command(parser.parse_args(bench_argv))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="focoos", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    runtimes = [rt.value for rt in RuntimeType]

    p = sub.add_parser("models", help="list the registry")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_models)

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", required=True, help="registry name, model folder or hub:// reference")
        p.add_argument("--device", default="auto")
        p.add_argument("--im-size", type=int, default=None, help="override the model's input size")

    p = sub.add_parser("predict", help="detect in one image")
    model_args(p)
    p.add_argument("--image", required=True, help="path or http(s) URL")
    p.add_argument("--url", default=None, help="call this Triton gRPC server (host:port) instead of running locally")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--output", type=Path, default=None, help="write the annotated image here")
    p.add_argument("--runtime", choices=runtimes, default=None, help="export first and run with this runtime")
    p.add_argument("--export-dir", type=Path, default=None)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("export", help="export the network to ONNX or TorchScript")
    model_args(p)
    p.add_argument("--runtime", choices=runtimes, default=RuntimeType.ONNX_CPU.value)
    p.add_argument("--out-dir", type=Path, default=None)
    p.add_argument("--opset", type=int, default=18)
    p.add_argument("--image-size", type=int, default=None)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("benchmark", help="latency of the network (eager, and exported with --runtime)")
    model_args(p)
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--runtime", choices=runtimes, default=None)
    p.add_argument("--export-dir", type=Path, default=None)
    p.set_defaults(func=_cmd_benchmark)

    p = sub.add_parser("build", help="build a model into a Triton model repository")
    p.add_argument("--model", help="registry name, model folder or hub:// reference")
    p.add_argument("--device", default="cpu")
    p.add_argument("--im-size", type=int, default=None)
    p.add_argument("--runtime", choices=runtimes, default=RuntimeType.ONNX_TRT16.value)
    p.add_argument("--repository", type=Path, default=Path("model_repository"))
    p.add_argument("--name", default=None, help="served name (default: the model's name)")
    p.add_argument("--target", choices=["gpu", "cpu", "embedded"], default="gpu")
    p.add_argument("--max-batch-size", type=int, default=8)
    p.add_argument("--check", action="store_true", help="list and validate the repository instead")
    p.add_argument("--prebuild-engine", type=Path, default=None, metavar="CACHE_DIR",
                   help="ONNX_TRT16/32: build the TensorRT engine now into CACHE_DIR/<name> (GPU machine)")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("serve", help="serve a repository on a real tritonserver until Ctrl-C")
    p.add_argument("--repository", type=Path, default=Path("model_repository"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--metrics-port", type=int, default=8002)
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("bench", add_help=False,
                       help="load a served model over gRPC at several concurrencies (p50/p90/p99, req/s)")
    p.add_argument("bench_args", nargs=argparse.REMAINDER)  # parsed by the bench itself, see main()

    p = sub.add_parser("demo", help="the whole stack offline: build, serve, call over gRPC, annotate")
    p.add_argument("--model", default=DEMO_MODEL)
    p.add_argument("--name", default="demo", help="served name")
    p.add_argument("--im-size", type=int, default=None, help="override the model's input size")
    p.add_argument("--repository", type=Path, default=Path("model_repository"))
    p.add_argument("--output-dir", type=Path, default=Path("demo_output"))
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--grpc-port", type=int, default=None)
    p.add_argument("--keep-serving", action="store_true")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("train", help="train a model on a dataset folder")
    model_args(p)
    p.add_argument("--dataset", required=True, help="dataset folder (split folders train/ and valid/ inside)")
    p.add_argument("--layout", default="roboflow_coco", choices=["roboflow_coco", "cls_folder"])
    p.add_argument("--run-name", required=True)
    p.add_argument("--output-dir", type=Path, default=Path("runs"))
    p.add_argument("--max-iters", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--num-gpus", type=int, default=1)
    p.add_argument("--eval-period", type=int, default=200)
    p.add_argument("--checkpointer-period", type=int, default=1000)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--hflip", type=float, default=0.0)
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_cmd_version)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["bench"]:
            return _bench(argv[1:])
        args = build_parser().parse_args(argv)
        return args.func(args)
    except FocoosError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
