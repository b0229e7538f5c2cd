"""The `focoos` command: the composition root, importing each part inside the command that needs it."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from enum import Enum
from pathlib import Path

from focoos.errors import FocoosError
from focoos.ports import DatasetLayout, DatasetSplitType, RuntimeType
from focoos.settings import predictions_dir

DEMO_MODEL = "fai-detr-n-digits"  # the bundled detector trained here (scripts/train_bundled_digits.py)
ADMIN_KEY_ENV = "FOCOOS_ADMIN_KEY"  # the server's admin key, read from the environment (not from argv: ps shows it)


def add_client_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """--tls-ca/--tls-cert/--tls-key of the commands that call a server (predict, bench, swap)."""
    parser.add_argument("--tls-ca", default=None, metavar="PEM", help="CA that signed the server's certificate (TLS)")
    parser.add_argument("--tls-cert", default=None, metavar="PEM", help="client certificate (mutual TLS)")
    parser.add_argument("--tls-key", default=None, metavar="PEM", help="key of the client certificate (mutual TLS)")


def client_tls_fields(args: argparse.Namespace) -> dict[str, str]:
    """ClientOptions fields from those arguments (none given: a plaintext channel)."""
    fields = {"root_certificates": args.tls_ca, "certificate_chain": args.tls_cert, "private_key": args.tls_key}
    return {key: value for key, value in fields.items() if value is not None}


def _admin_key() -> str | None:
    return os.environ.get(ADMIN_KEY_ENV) or None


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
    return ModelManager.get(args.model, device=args.device,
                            allow_random_weights=getattr(args, "allow_random_weights", False), **overrides)


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
        print(f"latency s: {det.latency.model_dump(exclude_none=True)}")


def _write_rgb(path: Path, image) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def _save_predictions(det, source: str, output_dir: Path, save: bool, save_json: bool, save_masks: bool) -> None:
    """Focoos' files: <stem>_annotated<ext>, <stem>_detections.json and <stem>_masks/mask_<n>.png."""
    from focoos.processing import decode_mask

    stem, suffix = Path(source).stem or "image", Path(source).suffix or ".jpg"
    output_dir.mkdir(parents=True, exist_ok=True)
    if save and det.image is not None:
        _write_rgb(output_dir / f"{stem}_annotated{suffix}", det.image)
    if save_json:
        (output_dir / f"{stem}_detections.json").write_text(json.dumps(det.model_dump(mode="json"), indent=2))
    masks = [d.mask for d in det.detections if d.mask]
    if save_masks and masks:
        masks_dir = output_dir / f"{stem}_masks"
        masks_dir.mkdir(exist_ok=True)
        for i, mask in enumerate(masks, start=1):
            _write_gray(masks_dir / f"mask_{i}.png", decode_mask(mask))
    print(f"results: {output_dir}")


def _write_gray(path: Path, mask) -> None:
    import cv2

    cv2.imwrite(str(path), mask.astype("uint8") * 255)


def _cmd_predict(args: argparse.Namespace) -> int:
    to_dir = args.save or args.save_json or args.save_masks
    annotate = args.output is not None or args.save or args.save_masks
    if args.url:
        from focoos.client import TritonInferModel

        with TritonInferModel(args.url, model_name=args.model, **client_tls_fields(args)) as model:
            det = model.infer(args.source, threshold=args.conf, annotate=annotate)
    else:
        model = _load(args)
        if args.runtime:
            model = model.export(runtime_type=RuntimeType(args.runtime), out_dir=args.export_dir,
                                 image_size=args.im_size)
        det = model.infer(args.source, threshold=args.conf, annotate=annotate)
    _print_detections(det)
    if args.output is not None:
        _write_rgb(Path(args.output), det.image)
        print(f"annotated image: {args.output}")
    if to_dir:
        _save_predictions(det, args.source, args.output_dir or predictions_dir(), args.save, args.save_json,
                          args.save_masks)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """Build -> serve on the embedded tritonserver -> call over gRPC -> print and annotate -> stop."""
    import threading
    import warnings

    from focoos.builder import RepositoryBuilder, TritonServer
    from focoos.client import TritonInferModel
    from focoos.model_manager import ModelManager, NoWeightsWarning
    from focoos.processing import encode_image
    from focoos.samples import digit_canvases, sample_images

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoWeightsWarning)
        model = ModelManager.get(args.model, device="cpu", allow_random_weights=args.allow_random_weights,
                                 **({"im_size": args.im_size} if args.im_size else {}))
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
    if args.runtime:
        runtime = RuntimeType(args.runtime)
    elif args.format == "torchscript":
        runtime = RuntimeType.TORCHSCRIPT_32
    else:  # Focoos' mapping of --format onnx: CUDA unless the device is the CPU
        cuda = args.device in ("cuda", "auto") and _cuda_available()
        runtime = RuntimeType.ONNX_CUDA32 if cuda else RuntimeType.ONNX_CPU
    infer_model = model.export(
        runtime_type=runtime, out_dir=args.out_dir, onnx_opset=args.opset, image_size=args.image_size,
        device=args.device, overwrite=args.overwrite,
    )
    print(f"exported {model.name} as {runtime.value} to {infer_model.model_dir}")
    return 0


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _cmd_benchmark(args: argparse.Namespace) -> int:
    size = args.size or args.im_size
    args.im_size = None  # Focoos: --im-size is the benchmark's input size, the model stays as it is
    model = _load(args)
    metrics = model.benchmark(iterations=args.iterations, size=size)
    print(metrics.model_dump_json(indent=2))
    if args.runtime:
        exported = model.export(runtime_type=RuntimeType(args.runtime), out_dir=args.export_dir,
                                allow_random_weights=True)  # latency only: the export is marked untrained
        print(exported.benchmark(iterations=args.iterations, size=size).model_dump_json(indent=2))
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from focoos.builder import RepositoryBuilder

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
    served = _build(args, args.repository, _build_options(args))
    if args.prebuild_engine:
        from focoos.builder.tensorrt import prebuild_engine_cache

        cache = prebuild_engine_cache(args.repository, served.name, args.prebuild_engine / served.name)
        print(f"TensorRT engine cache for {served.name}: {cache} (mount it at the config's trt_engine_cache_path)")
    return 0


def _build(args: argparse.Namespace, repository: Path, options: dict):
    """Build args.model into the repository; with no target given, the one the tritonserver here can load."""
    from focoos.builder import RepositoryBuilder
    from focoos.builder.server import server_target

    if options.get("target") is None:
        options["target"], why = server_target()
        choose = " (--target gpu|cpu|embedded chooses)" if "target" in vars(args) else ""
        print(f"target {options['target']}: {why}{choose}", flush=True)
    served = RepositoryBuilder(repository).add(_load(args), name=args.name, **options)
    print(f"built {served.name} version {served.versions[-1]} ({served.runtime_type}, {served.target}) "
          f"in {repository}", flush=True)
    return served


def _build_options(args: argparse.Namespace) -> dict:
    """RepositoryBuilder.add's options from the arguments build and swap share."""
    options = {"runtime_type": args.runtime, "target": args.target, "max_batch_size": args.max_batch_size,
               "max_queue_size": args.max_queue_size, "queue_timeout_ms": args.queue_timeout_ms,
               "max_in_flight": args.max_in_flight}
    return {key: value for key, value in options.items() if value is not None}


def _cmd_swap(args: argparse.Namespace) -> int:
    """Roll a new version out to a running server (explicit model control), or the newest one back; all or
    nothing (see focoos.builder.rollout): a refused or failed swap exits non-zero, the server as it was."""
    from focoos.builder import roll_back, roll_out
    from focoos.client.control import ModelControl

    with ModelControl(args.url, admin_key=_admin_key(), **client_tls_fields(args)) as control:
        if args.rollback:
            served = roll_back(args.repository, args.name, control, lock_timeout_s=args.lock_timeout)
        elif args.model:
            keep = {"keep": args.keep} if args.keep is not None else {}
            served = roll_out(args.repository, _load(args), control, name=args.name, force=args.force,
                              lock_timeout_s=args.lock_timeout, **keep, **_build_options(args))
        else:
            raise FocoosError("focoos swap needs --model (roll out) or --rollback")
        print(f"{served.name}: serving version {served.versions[-1]} (kept {served.versions}) on {args.url}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    """Serve a repository (or build MODEL into one first) until Ctrl-C/SIGTERM (exit 0); if tritonserver dies
    under it, exit non-zero with its last log lines, so a supervisor sees the failure and restarts."""
    import signal
    import tempfile
    import threading

    from focoos.builder import ServerTLS, TritonServer, TritonServerError
    from focoos.builder.server import MissingBackendError

    tls = ServerTLS(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert or args.tls_key else None
    with contextlib.ExitStack() as stack:
        repository = args.repository
        if args.model:
            if repository is None:
                repository = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="focoos-serve-")))
            _build(args, repository, {})
        repository = repository or Path("model_repository")
        _refuse_random_weights(repository, args.allow_random_weights)
        server = TritonServer(repository, grpc_port=args.grpc_port, http_port=args.http_port,
                              metrics_port=args.metrics_port, host=args.host, tls=tls,
                              model_control=args.model_control, admin_key=_admin_key())
        try:
            stack.enter_context(server)
        except MissingBackendError as exc:
            exc.hint = " (rebuild it with focoos build --target {target})"
            raise
        print(f"serving {repository}: grpc {server.grpc_url}, http {server.http_url}, "
              f"metrics {server.metrics_url}; tritonserver pid {server.pid} (Ctrl-C stops)", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            while server.returncode is None and not stop.wait(0.5):
                pass
        code = server.returncode
        if code is not None:
            killed = f" ({signal.Signals(-code).name})" if code < 0 else ""
            raise TritonServerError(f"tritonserver exited with code {code}{killed} while serving; "
                                    f"its last log lines:\n{server.log_tail()}")
    return 0


def _refuse_random_weights(repository: Path, allowed: bool) -> None:
    """Untrained weights are never served by default: a model built with them needs the flag again here."""
    from focoos.builder import RepositoryBuilder

    untrained = [m.name for m in RepositoryBuilder(repository).list() if m.weights == "random"]
    if untrained and not allowed:
        raise FocoosError(f"{repository} holds models built with RANDOM weights ({', '.join(untrained)}): their "
                          f"answers mean nothing. Rebuild them with real weights, or pass --allow-random-weights "
                          f"to serve them anyway")


def _random_weights_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-random-weights", action="store_true",
                   help="go on with RANDOM weights when the model's cannot be loaded, marked untrained "
                        "(default: an error that names the weights URL and how to provide them)")


def _dataset(args: argparse.Namespace, task):
    """AutoDataset for --dataset: a name (or .zip) in --datasets-dir, or a path to a folder or zip."""
    from focoos.data import AutoDataset
    from focoos.ports import DatasetLayout

    source, datasets_dir = Path(args.dataset).expanduser(), args.datasets_dir
    name = args.dataset
    if datasets_dir is None and (source.is_absolute() or len(source.parts) > 1 or source.exists()):
        name, datasets_dir = source.name, source.parent
    kwargs = {"datasets_dir": str(datasets_dir)} if datasets_dir is not None else {}
    return AutoDataset(dataset_name=name, task=task, layout=DatasetLayout(args.dataset_layout), **kwargs)


def _trainer_args(args: argparse.Namespace, model_name: str):
    """TrainerArgs from the options that were given; the rest keep TrainerArgs' own defaults."""
    import uuid

    from focoos.ports import TrainerArgs

    given = {k: getattr(args, k) for k in TrainerArgs.model_fields if getattr(args, k, None) is not None}
    given.setdefault("run_name", f"{Path(model_name).name}-{uuid.uuid4().hex[:8]}")  # Focoos' default
    return TrainerArgs(**given)


def _splits(args: argparse.Namespace, model, splits):
    from focoos.data import get_default_by_task

    resolution = args.im_size or model.model_info.im_size
    train_augs, val_augs = get_default_by_task(model.task, resolution)
    dataset = _dataset(args, model.task)
    return [dataset.get_split(train_augs if split.value == "train" else val_augs, split=split) for split in splits]


def _cmd_train(args: argparse.Namespace) -> int:
    from focoos.ports import DatasetSplitType

    model = _load(args)
    train_split, val_split = _splits(args, model, (DatasetSplitType.TRAIN, DatasetSplitType.VAL))
    trainer_args = _trainer_args(args, args.model)
    info = model.train(trainer_args, train_split, val_split)
    print(f"trained {info.name}: {info.val_metrics} -> {Path(trainer_args.output_dir) / trainer_args.run_name}")
    return 0


def _cmd_val(args: argparse.Namespace) -> int:
    from focoos.ports import DatasetSplitType

    model = _load(args)
    (val_split,) = _splits(args, model, (DatasetSplitType(args.split),))
    metrics = model.eval(_trainer_args(args, args.model), val_split)
    print(json.dumps(metrics, indent=2))
    return 0


def _cmd_settings(args: argparse.Namespace) -> int:
    from focoos import settings

    print("Current focoos settings:")
    for name, value in settings.describe().items():
        print(f"{name}={value}")
    return 0


def _cmd_checks(args: argparse.Namespace) -> int:
    """What this machine can run: python, torch and CUDA, ONNX Runtime providers, tritonserver, tritonclient."""
    import importlib.metadata
    import platform
    import shutil

    print(f"python: {platform.python_version()} ({platform.platform()})")
    for package in ("focoos", "numpy", "torch", "torchvision", "onnxruntime", "onnxruntime-gpu", "tensorrt",
                    "tritonclient", "nvidia-pytriton", "pycocotools", "supervision"):
        try:
            print(f"{package}: {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            print(f"{package}: not installed")
    with contextlib.suppress(ImportError):
        import torch

        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        print(f"cuda: {torch.version.cuda if torch.cuda.is_available() else 'not available'}; gpus: {gpus or 'none'}")
    with contextlib.suppress(ImportError):
        import onnxruntime

        print(f"onnxruntime providers: {onnxruntime.get_available_providers()}")
    try:
        from focoos.builder.server import find_tritonserver

        print(f"tritonserver: {find_tritonserver()}")
    except (ImportError, FocoosError, OSError) as exc:
        print(f"tritonserver: not found ({exc})")
    print(f"nvidia-smi: {shutil.which('nvidia-smi') or 'not found'}")
    return 0


def _cmd_hub(args: argparse.Namespace) -> int:
    from focoos.hub import FocoosHUB

    hub = FocoosHUB(api_key=args.api_key, host_url=args.host_url)
    if args.hub_command == "models":
        for m in hub.list_remote_models():
            print(f"{m.ref:<24} {m.name:<32} {m.task.value:<16} {m.status.value}")
    elif args.hub_command == "datasets":
        for d in hub.list_remote_datasets(include_shared=args.include_shared):
            print(f"{d.ref:<24} {d.name:<32} {d.task.value:<16} {d.layout.value}")
    elif args.hub_command == "dataset" and args.dataset_command == "download":
        kwargs = {"path": str(args.path)} if args.path else {}
        print(f"downloaded: {hub.get_remote_dataset(args.ref).download_data(**kwargs)}")
    elif args.hub_command == "dataset" and args.dataset_command == "upload":
        print(f"uploaded: {hub.get_remote_dataset(args.ref).upload_data(str(args.path))}")
    else:
        user = hub.get_user_info()
        print(f"logged in as {user.email} on {hub.host_url}")
    return 0


def _cmd_version(args: argparse.Namespace) -> int:
    from focoos import __version__

    print(f"focoos version: {__version__}")
    return 0


def _bench(bench_argv: list[str]) -> int:
    """The bench parses its own options, so gRPC is imported only when `focoos bench` runs."""
    from focoos.client.bench import add_bench_arguments, bench_command

    parser = argparse.ArgumentParser(prog="focoos bench", description="load a served model over gRPC")
    add_bench_arguments(parser)
    return bench_command(parser.parse_args(bench_argv))


def _im_size(value: str) -> int | tuple[int, int]:
    """Focoos' image sizes: 640 (square), or height,width / heightxwidth."""
    parts = value.lower().replace("x", ",").split(",")
    try:
        sizes = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid image size {value!r}: use 640, 480,640 or 480x640") from None
    if len(sizes) not in (1, 2):
        raise argparse.ArgumentTypeError(f"invalid image size {value!r}: use 640, 480,640 or 480x640")
    return sizes[0] if len(sizes) == 1 else (sizes[0], sizes[1])


def add_trainer_options(parser: argparse.ArgumentParser) -> None:
    """One option per TrainerArgs field (--max-iters, --resume/--no-resume, ...), defaults left to TrainerArgs."""
    import types
    import typing

    from focoos.ports import TrainerArgs

    for name, field in TrainerArgs.model_fields.items():
        kinds = [k for k in typing.get_args(field.annotation) if k is not type(None)] or [field.annotation]
        kind = kinds[0]
        flag = "--" + name.replace("_", "-")
        if flag in parser._option_string_actions:  # e.g. --device, shared with the model's options
            continue
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        elif kind in (int, float, str):
            parser.add_argument(flag, type=kind, default=None, metavar=kind.__name__.upper())
        elif isinstance(kind, type) and issubclass(kind, Enum):
            parser.add_argument(flag, choices=[member.value for member in kind], default=None)
        elif typing.get_origin(kind) in (dict, list) or isinstance(kind, types.GenericAlias):
            parser.add_argument(flag, type=json.loads, default=None, metavar="JSON")
        else:
            parser.add_argument(flag, default=None)


def build_parser() -> argparse.ArgumentParser:
    from focoos import __version__

    parser = argparse.ArgumentParser(prog="focoos", description=__doc__)
    parser.add_argument("--version", action="version", version=f"focoos {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    runtimes = [rt.value for rt in RuntimeType]

    p = sub.add_parser("models", help="list the registry")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_models)

    def model_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
        p.add_argument("--model", required=default is None, default=default,
                       help="registry name, model folder, run name in FOCOOS_MODELS_DIR or hub:// reference")
        p.add_argument("--device", default="auto")
        p.add_argument("--im-size", type=_im_size, default=None, help="override the model's input size: 640 or 480,640")

    p = sub.add_parser("predict", help="detect in one image (Focoos' options; ours: --url, --output)")
    model_args(p, default="fai-detr-l-obj365")
    p.add_argument("--source", "--image", dest="source", required=True, help="image path or http(s) URL")
    p.add_argument("--conf", "--threshold", dest="conf", type=float, default=0.5, help="confidence threshold")
    p.add_argument("--runtime", choices=runtimes, default=None, help="export first and run with this runtime")
    p.add_argument("--output-dir", type=Path, default=None, help="results folder (default: FOCOOS_PREDICTIONS_DIR)")
    p.add_argument("--save", action=argparse.BooleanOptionalAction, default=True, help="write the annotated image")
    p.add_argument("--save-json", action=argparse.BooleanOptionalAction, default=True, help="write detections JSON")
    p.add_argument("--save-masks", action=argparse.BooleanOptionalAction, default=True, help="write mask PNGs")
    p.add_argument("--url", default=None, help="call this Triton server instead of running locally: gRPC host:port, "
                                              "or HTTP http://host:port")
    p.add_argument("--output", type=Path, default=None, help="also write the annotated image to this file")
    add_client_tls_arguments(p)
    p.add_argument("--export-dir", type=Path, default=None)
    _random_weights_flag(p)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("export", help="export the network to ONNX or TorchScript")
    model_args(p)
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx", help="Focoos' choice of runtime")
    p.add_argument("--runtime", choices=runtimes, default=None, help="an exact runtime type (overrides --format)")
    p.add_argument("--output-dir", "--out-dir", dest="out_dir", type=Path, default=None)
    p.add_argument("--onnx-opset", "--opset", dest="opset", type=int, default=18)
    p.add_argument("--image-size", type=_im_size, default=None, help="export size (default: --im-size or the model's)")
    p.add_argument("--overwrite", action=argparse.BooleanOptionalAction, default=False,
                   help="replace an existing export (default: reuse it)")
    _random_weights_flag(p)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("benchmark", help="latency of the network (eager, and exported with --runtime)")
    model_args(p)
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--size", type=_im_size, default=None, help="input size (same as --im-size here)")
    p.add_argument("--runtime", choices=runtimes, default=None)
    p.add_argument("--export-dir", type=Path, default=None)
    p.set_defaults(func=_cmd_benchmark)

    def build_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", help="registry name, model folder or hub:// reference")
        p.add_argument("--device", default="cpu")
        p.add_argument("--im-size", type=_im_size, default=None)
        p.add_argument("--runtime", choices=runtimes, default=None, help="default: the target's")
        p.add_argument("--repository", type=Path, default=Path("model_repository"))
        p.add_argument("--target", choices=["gpu", "cpu", "embedded"], default=None,
                       help="gpu/cpu: an NGC Triton image; embedded: nvidia-pytriton's tritonserver (python backend "
                            "only). focoos build's default: the one the tritonserver here can load")
        p.add_argument("--max-batch-size", type=int, default=8)
        p.add_argument("--max-queue-size", type=int, default=None, help="requests the network step queues "
                       "before the server refuses more (0: unbounded; default: the builder's)")
        p.add_argument("--queue-timeout-ms", type=int, default=None,
                       help="refuse a request queued longer than this (0, the default: no limit)")
        p.add_argument("--max-in-flight", type=int, default=None,
                       help="requests the ensemble admits at once; the next is refused as busy before its image is "
                            "decoded (0: no limit; default: two batches per network instance + one per python step "
                            "instance)")
        _random_weights_flag(p)

    p = sub.add_parser("build", help="build a model into a Triton model repository")
    build_arguments(p)
    p.add_argument("--name", default=None, help="served name (default: the model's name)")
    p.add_argument("--check", action="store_true", help="list and validate the repository instead")
    p.add_argument("--prebuild-engine", type=Path, default=None, metavar="CACHE_DIR",
                   help="ONNX_TRT16/32: build the TensorRT engine now into CACHE_DIR/<name> (GPU machine)")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("serve", help="serve a repository (or a model, built first) on a real tritonserver until Ctrl-C")
    p.add_argument("model", nargs="?", default=None,
                   help="build this model (registry name, model folder or hub:// reference) and serve it")
    p.add_argument("--repository", type=Path, default=None,
                   help="default: model_repository; with MODEL, a temporary one unless given")
    p.add_argument("--name", default=None, help="with MODEL: served name (default: the model's name)")
    p.add_argument("--device", default="cpu", help="with MODEL: where it is loaded to be exported")
    p.add_argument("--im-size", type=_im_size, default=None, help="with MODEL: override its input size")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--metrics-port", type=int, default=8002)
    p.add_argument("--tls-cert", default=None, metavar="PEM", help="server certificate: gRPC over TLS")
    p.add_argument("--tls-key", default=None, metavar="PEM", help="key of the server certificate")
    p.add_argument("--tls-client-ca", default=None, metavar="PEM",
                   help="mutual TLS: only clients with a certificate this CA signed may call")
    p.add_argument("--model-control", choices=["none", "explicit"], default="none",
                   help="explicit: models change only on load calls (focoos swap)")
    _random_weights_flag(p)
    # The admin key comes from $FOCOOS_ADMIN_KEY: with it, model control and shared memory need the key.
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("swap", help="roll a new version out to a running server, or roll the newest back (all or "
                       "nothing; built as the served version unless --target/--runtime/--max-batch-size say otherwise)")
    build_arguments(p)
    p.add_argument("--url", required=True, help="the server's gRPC address (host:port)")
    p.add_argument("--name", required=True, help="served name")
    p.add_argument("--rollback", action="store_true", help="retire the newest version instead")
    p.add_argument("--keep", type=int, default=None,
                   help="versions the repository keeps after a roll-out (default: roll_out's, the newest two)")
    p.add_argument("--force", action="store_true",
                   help="allow a new version with another task or other outputs under the same name")
    p.add_argument("--lock-timeout", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for another swap of the repository to finish (default: refuse at once)")
    add_client_tls_arguments(p)
    # Target, runtime and batch size not given: the served version's.
    p.set_defaults(func=_cmd_swap, target=None, runtime=None, max_batch_size=None)

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
    _random_weights_flag(p)
    p.set_defaults(func=_cmd_demo)

    for command, func, text in (("train", _cmd_train, "train a model on a dataset"),
                                ("val", _cmd_val, "evaluate a model on a dataset split")):
        p = sub.add_parser(command, help=text)
        model_args(p)
        p.add_argument("--dataset", required=True, help="dataset name or .zip in --datasets-dir, or a folder/zip path")
        p.add_argument("--datasets-dir", type=Path, default=None, help="default: FOCOOS_DATASETS_DIR")
        p.add_argument("--dataset-layout", "--layout", dest="dataset_layout", default="roboflow_coco",
                       choices=[layout.value for layout in DatasetLayout])
        if command == "val":
            p.add_argument("--split", default="val", choices=[split.value for split in DatasetSplitType])
        add_trainer_options(p)
        p.set_defaults(func=func)

    p = sub.add_parser("settings", help="print the settings and the environment variables that change them")
    p.set_defaults(func=_cmd_settings)
    p = sub.add_parser("checks", help="print what this machine can run (torch, CUDA, ONNX Runtime, tritonserver)")
    p.set_defaults(func=_cmd_checks)

    p = sub.add_parser("hub", help="Focoos Hub: user, models, datasets (FOCOOS_API_KEY)")
    p.add_argument("--api-key", default=None)
    p.add_argument("--host-url", default=None)
    hub = p.add_subparsers(dest="hub_command")
    hub.add_parser("models", help="the models of this account")
    datasets = hub.add_parser("datasets", help="the datasets of this account")
    datasets.add_argument("--include-shared", action="store_true")
    dataset = hub.add_parser("dataset", help="download or upload one dataset").add_subparsers(
        dest="dataset_command", required=True)
    download = dataset.add_parser("download")
    download.add_argument("--ref", required=True)
    download.add_argument("--path", type=Path, default=None, help="default: FOCOOS_DATASETS_DIR")
    upload = dataset.add_parser("upload")
    upload.add_argument("--ref", required=True)
    upload.add_argument("--path", type=Path, required=True, help="the dataset .zip")
    p.set_defaults(func=_cmd_hub)

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
