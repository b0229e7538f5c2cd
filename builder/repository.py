"""RepositoryBuilder: write a FocoosModel into a Triton model repository as a four-model ensemble.

Each served name becomes `<name>` (ensemble), `<name>_preprocess`, `<name>_model` and
`<name>_postprocess`. Everything is built in a temporary folder inside the repository and moved
into place with renames, network and python steps first and the ensemble last, so a server
polling the repository never sees half a model. Adding a name again adds a version; each version
keeps a copy of the config it was built with (VERSION_CONFIG_FILE), so rolling back restores it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import focoos.processing
from focoos.errors import FocoosError
from focoos.infer.export import EXPORT_META, INFO_FILE, export_filename, export_network, staging_dir
from focoos.infer.pipeline import model_top_k
from focoos.infer.runtimes import DEFAULT_MAX_BATCH_SIZE, PRECISION_ENGINES
from focoos.models.family import family_spec
from focoos.ports import ModelInfo, RuntimeType
from focoos.processing import load_images, validate_threshold
from focoos.processing.transport import DEFAULT_THRESHOLD, PARAM_NATIVE_MAX_PIXELS, PARAM_THRESHOLD, PARAM_TOP_K

from .configs import (
    ACCURACY_FILE,
    CONFIG_FILE,
    DEFAULT_ADMISSION_MAX_LEASE_S,
    DEFAULT_ENGINE_CACHE,
    DEFAULT_MAX_QUEUE_SIZE,
    VERSION_CONFIG_FILE,
    Admission,
    StepNames,
    default_max_in_flight,
    ensemble_config,
    model_versions,
    native_max_pixels,
    network_config,
    network_engine,
    parse_pbtxt,
    postprocess_config,
    preprocess_config,
    read_config,
    target_runtime,
    to_pbtxt,
)
from .python_models.cv_metrics import METRICS_FILE, answers_from_detections, metrics_settings, reference_from_results

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tritonclient.grpc import model_config_pb2 as mc

    from focoos.focoos_model import FocoosModel

# Found through the imported packages, so a wheel install (site-packages) works as a checkout does.
PROCESSING_DIR = Path(focoos.processing.__file__).resolve().parent
PYTHON_MODELS_DIR = Path(__file__).parent / "python_models"
DEFAULT_REPOSITORY = "model_repository"  # where builds go when no repository is named (relative to the cwd)
PROCESSOR_MODULE_FILE = "focoos_processor.py"  # the family's processor.py, next to the postprocess step


class RepositoryError(FocoosError):
    """The repository cannot be written or is inconsistent."""


@dataclass(frozen=True)
class ServedModel:
    """One ensemble in a repository."""

    name: str
    versions: list[int]
    task: str
    runtime_type: str
    target: str
    source_model: str
    weights: str = "?"  # "loaded", or "random" where built with allow_random_weights
    precision: str = "fp32"
    accuracy: dict | None = None  # the newest version's passed accuracy check (focoos.builder.accuracy), if it ran


def _serving_signature(config: mc.ModelConfig) -> tuple:
    """What a version's files must match in the config.pbtxt that serves them: backend, model file, tensor names."""
    model_file = config.parameters["model_file"].string_value if "model_file" in config.parameters else ""
    return (config.backend or config.platform, config.default_model_filename, model_file,
            [t.name for t in config.input], [t.name for t in config.output])


def _built_for_another_config(version_dir: Path, served: mc.ModelConfig) -> bool:
    """Whether the config a version was built with (VERSION_CONFIG_FILE) differs from the served config.pbtxt
    in what the version's files must match: a server reads one config per model, so it could not load them."""
    kept = version_dir / VERSION_CONFIG_FILE
    return kept.is_file() and _serving_signature(parse_pbtxt(kept.read_text())) != _serving_signature(served)


def _copy_python_step(template: str, version_dir: Path, processor: Path | None = None) -> None:
    """The step's model.py with what it imports: the step helpers, and `focoos.processing` (plus the family's
    processor for the postprocess step) in a `focoos` folder of its own, so the same import lines run here and
    in a server that has only numpy, opencv and pillow."""
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(PYTHON_MODELS_DIR / template, version_dir / "model.py")
    shutil.copy(PYTHON_MODELS_DIR / "triton_step.py", version_dir / "focoos_triton_step.py")
    shutil.copy(PYTHON_MODELS_DIR / "admission.py", version_dir / "focoos_admission.py")
    shutil.copy(PYTHON_MODELS_DIR / "cv_metrics.py", version_dir / "focoos_cv_metrics.py")
    package = version_dir / "focoos"
    package.mkdir()
    (package / "__init__.py").write_text('"""What the serving steps need of focoos: numpy processing only."""\n')
    shutil.copytree(PROCESSING_DIR, package / "processing", ignore=shutil.ignore_patterns("__pycache__"))
    if processor is not None:
        shutil.copy(processor, version_dir / PROCESSOR_MODULE_FILE)


def _cv_reference(model: FocoosModel, info: ModelInfo, source: dict | str | Path | Sequence | None,
                  threshold: float) -> dict | None:
    """Reference distributions for drift: recorded ones, or the model's answers on held-out images (each run at
    the served input size and threshold, as the ensemble runs it)."""
    if source is None or isinstance(source, dict):
        return source
    if isinstance(source, (str, Path)):
        return json.loads(Path(source).read_text())
    images = load_images(list(source))[0]
    answers = [answers_from_detections(model.infer(im, threshold=threshold, image_size=info.input_hw))
               for im in images]
    return reference_from_results(info.task.value, info.classes, answers, [im.shape[:2] for im in images])


PRECISIONS = tuple(PRECISION_ENGINES)  # fp32, int8, bf16


def _check_precision(precision: str, runtime_type: RuntimeType, target: str, calibration: str | Path | None) -> str:
    """Refuse a precision this build cannot give (never a quiet fp32 in its place); warn where it will be slow.
    Returns the engine that runs the network (network_engine)."""
    import warnings

    from focoos.infer.runtimes import BF16_CPU_FLAGS, INT8_CPU_FLAGS, cpu_precisions

    if precision not in PRECISIONS:
        raise RepositoryError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "fp32" and runtime_type != RuntimeType.ONNX_CPU:
        raise RepositoryError(f"precision {precision} runs on onnx_cpu, not {runtime_type.value}")
    try:
        engine = network_engine(runtime_type, precision, target)
    except ValueError as exc:
        raise RepositoryError(str(exc)) from None
    if precision == "fp32":
        return engine
    if precision == "int8" and calibration is None:
        raise RepositoryError("precision int8 needs calibration_images: a folder of images like those served")
    computes = cpu_precisions()
    if precision == "bf16" and "bf16" not in computes:
        raise RepositoryError(f"precision bf16 needs a CPU with {' or '.join(BF16_CPU_FLAGS)}; this one has neither "
                              f"and computes {', '.join(sorted(computes))} natively: build fp32 or int8 instead")
    if engine == "openvino":
        try:
            import openvino  # noqa: F401
        except ImportError:
            raise RepositoryError(f"precision {precision} is served by openvino: pip install 'focoos[openvino]' "
                                  "here and where the server runs") from None
    if precision == "int8" and "int8" not in computes:
        warnings.warn(f"this CPU has no int8 dot products ({' / '.join(INT8_CPU_FLAGS)}): int8 is emulated here "
                      "and may not beat fp32 (benchmarks/precision_engines.py measures both)", stacklevel=3)
    return engine


def _quantize(onnx_file: Path, info: ModelInfo, calibration: str | Path | None) -> Path:
    from focoos.infer.quantizer import OnnxQuantizer, QuantizationCfg

    cfg = QuantizationCfg(calibration_images_folder=str(calibration), size=info.input_hw[0], format="QDQ",
                          per_channel=True)
    return OnnxQuantizer(cfg, onnx_file).quantize(benchmark=False)


class RepositoryBuilder:
    """Build, list, validate and remove served models in a Triton model repository.

    Example:
        >>> repo = RepositoryBuilder("model_repository")
        >>> repo.add(model, runtime_type=RuntimeType.ONNX_CPU, name="detr_cpu", target="embedded")
    """

    def __init__(self, root: str | Path = DEFAULT_REPOSITORY) -> None:
        self.root = Path(root)

    def add(
        self,
        model: FocoosModel,
        *,
        runtime_type: RuntimeType | str | None = None,
        name: str | None = None,
        target: str = "gpu",
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        top_k: int | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        preprocess_instances: int = 2,
        postprocess_instances: int = 2,
        network_instances: int = 1,
        engine_cache_dir: str = DEFAULT_ENGINE_CACHE,
        network_threads: int = 0,
        reduced_decode: bool = True,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
        queue_timeout_ms: int = 0,
        max_in_flight: int | None = None,
        admission_max_lease_s: float = DEFAULT_ADMISSION_MAX_LEASE_S,
        allow_random_weights: bool = False,
        cv_metrics: bool = True,
        cv_reference: dict | str | Path | Sequence | None = None,
        precision: str = "fp32",
        calibration_images: str | Path | None = None,
        check_accuracy: Any = None,
        accuracy_tolerance: float | None = None,
    ) -> ServedModel:
        """Export the network and write the four models; returns what was written.

        runtime_type: how the network runs; None: the target's default (TARGET_RUNTIMES: onnx_trt16 on 'gpu',
        onnx_cpu on 'cpu' and 'embedded'); a runtime the target cannot run is refused.
        Older versions of the name that the new configs cannot serve (another backend, model file or task)
        are removed once the new version is in place; the others stay for a roll-back.
        target: 'gpu' (onnxruntime/libtorch backends on GPU instances; ONNX_CPU stays on CPU), 'cpu'
        (same backends on CPU instances) or 'embedded' (the network runs in a Python-backend model,
        for servers that have only the python backend; `network_threads` sets its intra-op threads per
        instance, 0 for the serving machine's cores: instances x threads should not exceed the cores).
        reduced_decode: the preprocess step decodes a JPEG at least twice the input size at 1/2, 1/4 or
        1/8 scale (libjpeg's DCT scaling), still covering the input: big photos cost a fraction of a full
        decode; answers move slightly against a full decode (measured: tests/test_reduced_decode.py).
        max_in_flight: requests admitted into the ensemble at once (None: `default_max_in_flight`, 0: no
        limit); the preprocess step refuses the next one as busy before decoding it. A request that dies
        between the steps (deadline, hang-up) holds its slot for four recent service times, at least 1 s and
        at most `admission_max_lease_s`.
        allow_random_weights: build a model whose weights could not be loaded (else RandomWeightsError); its
        metadata then says `weights: random` and its info is marked untrained (FocoosModel.served_info).
        cv_metrics: the Python steps export what the model sees and answers (python_models/cv_metrics.py).
        cv_reference: what drift is measured against: held-out images (anything infer() takes, run through the
        model here at `threshold`), or a recorded reference (dict or JSON file); None: no drift index.
        precision: "fp32"; "int8": the ONNX file quantized (static QDQ, per-channel, ONNX Runtime) on
        `calibration_images` (a folder, e.g. the validation split); "bf16": the same file computed in bf16, refused
        on a CPU without it. Each runs on its engine (focoos.infer.runtimes.PRECISION_ENGINES, measured): openvino
        runs only in the embedded target's step. onnx_cpu only; precision and engine are recorded in the metadata.
        Accuracy moves: measure it (benchmarks/accuracy_per_runtime.py) before serving it.
        check_accuracy: a validation split (a MapDataset, as FocoosModel.eval takes): before anything is published
        the new build is served on its own tritonserver and scored on it against the model's eager fp32 answers;
        more than `accuracy_tolerance` points lower (None: 1.0 AP/mIoU, 0.5 top-1) raises AccuracyGateError and
        leaves the repository unchanged. A passed check is written beside the ensemble (accuracy.json).
        """
        if runtime_type == RuntimeType.ONNX_COREML:
            raise RepositoryError("Triton has no CoreML backend: pick onnx_trt16, onnx_trt32, onnx_cuda32, onnx_cpu "
                                  "or torchscript_32")
        try:
            runtime_type = target_runtime(target, runtime_type)
        except ValueError as exc:
            raise RepositoryError(str(exc)) from None
        engine = _check_precision(precision, runtime_type, target, calibration_images)
        if check_accuracy is not None:  # a split or tolerance the gate cannot use is refused before the build
            from .accuracy import gate_inputs

            accuracy_tolerance = gate_inputs(model, check_accuracy, accuracy_tolerance)
        if max_batch_size < 1:
            raise RepositoryError(f"max_batch_size must be at least 1, got {max_batch_size}")
        threshold = validate_threshold(threshold)
        info = model.served_info(allow_random_weights)
        names = StepNames(name or info.name)
        top_k = model_top_k(info) if top_k is None else int(top_k)
        if top_k < 1:
            raise RepositoryError(f"top_k must be at least 1, got {top_k}")
        if max_in_flight is None:
            max_in_flight = default_max_in_flight(max_batch_size, network_instances,
                                                  preprocess_instances + postprocess_instances)
        if max_in_flight < 0 or admission_max_lease_s <= 0:
            raise RepositoryError(f"max_in_flight must be >= 0 (0: no limit) and admission_max_lease_s > 0, got "
                                  f"{max_in_flight} and {admission_max_lease_s}")
        admission = Admission(max_in_flight, admission_max_lease_s)
        if max_queue_size < 0 or queue_timeout_ms < 0:
            raise RepositoryError(f"max_queue_size and queue_timeout_ms must be >= 0 (0: no limit), got "
                                  f"{max_queue_size} and {queue_timeout_ms}")
        family = family_spec(info.model_family)
        output_names = family.output_names(info)
        native_pixels = native_max_pixels(info, runtime_type)  # > 0: images served at their own size, as eager
        model_file = export_filename(runtime_type)  # model.pt (libtorch's default) or model.onnx

        self.root.mkdir(parents=True, exist_ok=True)
        existing = [v for step in names.all for v in model_versions(self.root / step)]
        version = str(max(existing, default=0) + 1)
        failed = f"building {names.ensemble} into {self.root} failed"
        with staging_dir(self.root, f".build-{names.ensemble}-", RepositoryError, failed) as staging:
            export_dir = staging / "export"
            export_network(model.model, info, runtime_type, export_dir, device="cpu")
            exported = json.loads((export_dir / EXPORT_META).read_text())

            network_dir = staging / names.network / version
            network_dir.mkdir(parents=True)
            network_file = export_dir / exported["file"]
            if precision == "int8":
                network_file = _quantize(network_file, info, calibration_images)
            shutil.move(network_file, network_dir / model_file)
            if target == "embedded":
                shutil.copy(PYTHON_MODELS_DIR / "network.py", network_dir / "model.py")
                shutil.copy(PYTHON_MODELS_DIR / "triton_step.py", network_dir / "focoos_triton_step.py")
            _copy_python_step("preprocess.py", staging / names.preprocess / version)
            _copy_python_step("postprocess.py", staging / names.postprocess / version, family.processor_file)
            if cv_metrics:
                settings = json.dumps(metrics_settings(names.ensemble, info.task.value, info.classes,
                                                       _cv_reference(model, info, cv_reference, threshold)))
                for step in (names.preprocess, names.postprocess):
                    (staging / step / version / METRICS_FILE).write_text(settings)
            (staging / names.ensemble / version).mkdir(parents=True)
            info.dump_json(staging / names.ensemble / version / INFO_FILE)

            configs = {
                names.preprocess: preprocess_config(names, info, max_batch_size, preprocess_instances, admission,
                                                    reduced_decode, max_queue_size, queue_timeout_ms, native_pixels),
                names.network: network_config(names, info, runtime_type, target, output_names, model_file,
                                              max_batch_size, network_instances, engine_cache_dir,
                                              network_threads, max_queue_size, queue_timeout_ms,
                                              native=native_pixels > 0, precision=precision),
                names.postprocess: postprocess_config(names, info, output_names, max_batch_size,
                                                      postprocess_instances, top_k, threshold, admission),
                names.ensemble: ensemble_config(names, info, runtime_type, output_names, max_batch_size, top_k,
                                                {**self._metadata(info, runtime_type, target, top_k, threshold),
                                                 "precision": precision,
                                                 "engine": engine,
                                                 PARAM_NATIVE_MAX_PIXELS: native_pixels}),
            }
            for step, config in configs.items():
                text = to_pbtxt(config)
                (staging / step / CONFIG_FILE).write_text(text)
                (staging / step / version / VERSION_CONFIG_FILE).write_text(text)
            if check_accuracy is not None:  # the staging folder, export aside, is a repository of this build alone
                from .accuracy import check_accuracy as served_accuracy

                shutil.rmtree(export_dir)
                served_accuracy(model, staging, names.ensemble, check_accuracy, accuracy_tolerance).write(
                    staging / names.ensemble / version)
            for step in configs:  # ensemble last: it only ever points at complete steps
                self._move_into_place(staging / step, self.root / step, version)
            for old in self._unservable_versions(names):
                for step in names.all:
                    shutil.rmtree(self.root / step / str(old), ignore_errors=True)
        return self.get(names.ensemble)

    def _unservable_versions(self, names: StepNames) -> list[int]:
        """Versions whose kept config differs from a step's config.pbtxt in what its files must match: a server
        reads one config per model, so it could not load them (built for another target, runtime or task)."""
        unservable: set[int] = set()
        for step in names.all:
            current = read_config(self.root / step)
            for version in model_versions(self.root / step):
                if _built_for_another_config(self.root / step / str(version), current):
                    unservable.add(version)
        return sorted(unservable)

    @staticmethod
    def _metadata(info: ModelInfo, runtime_type: RuntimeType, target: str, top_k: int, threshold: float) -> dict:
        """What a client discovers from the ensemble's config: class names, task, input size, source."""
        return {
            "task": info.task.value,
            "classes": info.classes,
            "im_size": list(info.input_hw),
            "model_family": info.model_family.value,
            "source_model": info.name,
            "weights": "random" if info.untrained else "loaded",
            "runtime_type": runtime_type.value,
            "target": target,
            PARAM_TOP_K: top_k,
            PARAM_THRESHOLD: threshold,
            "model_info": info.model_dump(mode="json", exclude={"classes"}, exclude_none=True),
        }

    @staticmethod
    def _move_into_place(built: Path, final: Path, version: str) -> None:
        if not final.exists():
            built.rename(final)
            return
        (built / version).rename(final / version)
        (built / CONFIG_FILE).replace(final / CONFIG_FILE)

    # -- inspection
    def _ensembles(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        folders = (p.parent for p in self.root.glob(f"*/{CONFIG_FILE}"))
        return sorted(folder for folder in folders if read_config(folder).platform == "ensemble")

    def get(self, name: str) -> ServedModel:
        if not (self.root / name / CONFIG_FILE).is_file():
            raise RepositoryError(f"no model '{name}' in {self.root}")
        params = {k: v.string_value for k, v in read_config(self.root / name).parameters.items()}
        versions = model_versions(self.root / name)
        check = self.root / name / str(versions[-1]) / ACCURACY_FILE if versions else None
        return ServedModel(
            name=name,
            versions=versions,
            task=params.get("task", "?"),
            runtime_type=params.get("runtime_type", "?"),
            target=params.get("target", "?"),
            source_model=params.get("source_model", "?"),
            weights=params.get("weights", "?"),
            precision=params.get("precision", "fp32"),
            accuracy=json.loads(check.read_text()) if check is not None and check.is_file() else None,
        )

    def list(self) -> list[ServedModel]:
        return [self.get(p.name) for p in self._ensembles()]

    def prune(self, name: str, keep: int) -> list[int]:
        """Delete all but the newest `keep` versions of a served model's four steps; returns what was deleted."""
        if keep < 1:
            raise RepositoryError(f"keep must be at least 1, got {keep}")
        deleted: set[int] = set()
        for step in StepNames(self.get(name).name).all:
            for version in model_versions(self.root / step)[:-keep]:
                shutil.rmtree(self.root / step / str(version))
                deleted.add(version)
        return sorted(deleted)

    def remove(self, name: str) -> None:
        """Delete a served model and its three steps."""
        names = StepNames(name)
        if not (self.root / name).is_dir():
            raise RepositoryError(f"no model '{name}' in {self.root}")
        for step in names.all:
            shutil.rmtree(self.root / step, ignore_errors=True)

    def validate(self) -> list[str]:
        """Problems found in the repository (empty when every config parses and every reference resolves)."""
        problems: list[str] = []
        configs = {}
        for path in sorted(self.root.glob(f"*/{CONFIG_FILE}")):
            try:
                configs[path.parent.name] = read_config(path.parent)
            except Exception as exc:  # noqa: BLE001 - text_format raises ParseError and others
                problems.append(f"{path}: does not parse as a Triton ModelConfig: {exc}")
        for name, config in configs.items():
            if config.name and config.name != name:
                problems.append(f"{name}: config names the model '{config.name}'")
            versions = model_versions(self.root / name)
            if not versions:
                problems.append(f"{name}: no version folder")
            for step in config.ensemble_scheduling.step:
                if step.model_name not in configs:
                    problems.append(f"{name}: step '{step.model_name}' is not in the repository")
            for version in versions:
                folder = self.root / name / str(version)
                if _built_for_another_config(folder, config):
                    problems.append(f"{name}/{version}: built for another backend, model file or tensors than "
                                    f"{name}/{CONFIG_FILE} describes (a server cannot load it): build the name again")
                    continue
                if config.backend == "python" and not (folder / "model.py").is_file():
                    problems.append(f"{name}/{version}: python backend without model.py")
                if config.default_model_filename and not (folder / config.default_model_filename).is_file():
                    problems.append(f"{name}/{version}: {config.default_model_filename} is missing")
        return problems
