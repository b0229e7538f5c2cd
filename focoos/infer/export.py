"""Export a torch network to ONNX or TorchScript in a folder that InferModel (and the builder) read.

Files (Focoos' names): model.onnx or model.pt (TorchScript), model_info.json beside it, and
export.json (runtime, file, tensor names of the latest export). Both model files describe
themselves (ONNX output names; TorchScript carries them as an extra file), so an ONNX and a
TorchScript export can share a folder. Files are written in a temporary sibling and moved in
one by one: other files in the folder (weights, a run's logs) stay, and a failed export
leaves nothing behind. ONNX files are optimised offline by ONNX Runtime at its basic level, as
Focoos' `simplify_onnx` does (`optimize_onnx`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from focoos.errors import ExportError, FocoosError
from focoos.infer.runtimes import TORCHSCRIPT_META
from focoos.models.family import family_spec
from focoos.ports import ArtifactName, ModelExtension, ModelInfo, RuntimeType
from focoos.processing.preprocess import NETWORK_INPUT_DTYPE
from focoos.processing.transport import NETWORK_INPUT

EXPORT_META = "export.json"
DEFAULT_ONNX_OPSET = 18  # export()'s opset when the caller names none (Focoos' default)
INFO_FILE = ArtifactName.INFO.value


@contextmanager
def staging_dir(parent: Path, prefix: str, error: type[FocoosError], failed: str) -> Iterator[Path]:
    """A temporary folder inside `parent` (one filesystem, so results move in by rename), removed afterwards.

    Our own errors pass as they are; any other becomes `error("<failed>: <cause>")`, one type for the caller.
    """
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield tmp
    except FocoosError:
        raise
    except Exception as exc:
        raise error(f"{failed}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_filename(runtime_type: RuntimeType | str) -> str:
    """model.onnx or model.pt, Focoos' file names."""
    return f"model.{ModelExtension.from_runtime_type(runtime_type).value}"


def _export_onnx(
    network: Any, example: Any, path: Path, output_names: list[str], opset: int, dynamic: bool
) -> None:
    import onnx
    import torch

    axes = {NETWORK_INPUT: {0: "batch", 2: "height", 3: "width"}} if dynamic else None
    if dynamic:
        extra = getattr(network, "output_axes", {})  # e.g. mask maps that follow the input size
        axes.update({name: {0: "batch", **extra.get(name, {})} for name in output_names})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network,
            (example,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[NETWORK_INPUT],
            output_names=output_names,
            dynamic_axes=axes,
            do_constant_folding=True,
        )
    onnx.checker.check_model(str(path))


def optimize_onnx(path: Path) -> None:
    """Rewrite an ONNX file with ONNX Runtime's basic graph optimisations, in place: constants folded, redundant
    nodes removed, Conv/MatMul+Add/BatchNorm fused into standard ops (fai-detr-n-digits: 1167 -> 649 nodes).

    Focoos' simplify_onnx runs the same offline pass (ORT_ENABLE_BASIC on the CPU). Only the basic level is saved:
    higher levels write provider-specific nodes (NCHWc layouts, contrib ops), so the file would no longer run on
    other providers, OpenVINO, or Triton's onnxruntime backend elsewhere; the runtime applies those itself at load.
    Focoos' tool (onnxruntime.transformers' optimize_model) then also fuses transformer patterns into com.microsoft
    contrib ops (Gelu here), ONNX Runtime's own and outside the standard: left out.
    Measured (benchmarks/precision_engines.py --export, fai-detr-n-digits): outputs identical under ONNX Runtime,
    latency unchanged under both engines (0.98-1.01x), sessions start 10-15% sooner.
    """
    import onnx
    import onnxruntime as ort

    optimized = path.with_name(path.stem + "_optimized.onnx")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(optimized)
    # ConstantSharing left off, as in onnxruntime.transformers' optimize_model, the tool Focoos calls.
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                         disabled_optimizers=["ConstantSharing"])
    onnx.checker.check_model(str(optimized))
    optimized.replace(path)


def _export_torchscript(network: Any, example: Any, path: Path, meta: dict[str, Any]) -> None:
    import torch

    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(network, example, check_trace=False)
    traced.save(str(path), _extra_files={TORCHSCRIPT_META: json.dumps(meta)})


def export_network(
    network: Any,
    info: ModelInfo,
    runtime_type: RuntimeType,
    out_dir: Path,
    onnx_opset: int = DEFAULT_ONNX_OPSET,
    device: str = "cpu",
    overwrite: bool = True,
    image_size: int | tuple[int, int] | None = None,
    dynamic_axes: bool = True,
    optimize: bool = True,
) -> Path:
    """Write the model file, model_info.json and export.json into out_dir and return out_dir.

    optimize: ONNX files get ONNX Runtime's basic offline graph optimisation (`optimize_onnx`)."""
    import torch

    out_dir = Path(out_dir)
    filename = export_filename(runtime_type)
    if (out_dir / filename).exists() and not overwrite:
        raise ExportError(f"{out_dir / filename} exists; pass overwrite=True to replace it")
    if image_size is not None:
        info = ModelInfo.validated("export image_size", **{**info.model_dump(), "im_size": image_size})
    output_names = family_spec(info.model_family).output_names(info)
    height, width = info.input_hw
    example = torch.from_numpy(np.zeros((1, 3, height, width), dtype=NETWORK_INPUT_DTYPE)).to(device)
    network = network.to(device).eval()
    meta = {
        "runtime_type": runtime_type.value,
        "file": filename,
        "input_name": NETWORK_INPUT,
        "input_dtype": np.dtype(NETWORK_INPUT_DTYPE).name,
        "output_names": output_names,
        "onnx_opset": onnx_opset if runtime_type.is_onnx else None,
        "dynamic_axes": dynamic_axes,
        "optimized": optimize and runtime_type.is_onnx,
    }

    failed = f"export of {info.name} to {runtime_type.value} failed"
    with staging_dir(out_dir.parent, f".{out_dir.name}-", ExportError, failed) as tmp:
        if runtime_type == RuntimeType.TORCHSCRIPT_32:
            _export_torchscript(network, example, tmp / filename, meta)
        else:
            _export_onnx(network, example, tmp / filename, output_names, onnx_opset, dynamic_axes)
            if optimize:
                optimize_onnx(tmp / filename)
        info.dump_json(tmp / INFO_FILE)
        (tmp / EXPORT_META).write_text(json.dumps(meta, indent=2))
        out_dir.mkdir(exist_ok=True)
        for name in (filename, INFO_FILE, EXPORT_META):  # only these names: the folder's other files stay
            (tmp / name).replace(out_dir / name)
    return out_dir
