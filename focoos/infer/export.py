"""Export a torch network to ONNX or TorchScript in a folder that InferModel (and the builder) read.

Files (Focoos' names): model.onnx or model.pt (TorchScript), model_info.json beside it, and
export.json (runtime, file, tensor names of the latest export). Both model files describe
themselves (ONNX output names; TorchScript carries them as an extra file), so an ONNX and a
TorchScript export can share a folder. Files are written in a temporary sibling and moved in
one by one: other files in the folder (weights, a run's logs) stay, and a failed export
leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from focoos.errors import ExportError
from focoos.infer.runtimes import TORCHSCRIPT_META
from focoos.ports import ArtifactName, ModelExtension, ModelInfo, RuntimeType
from focoos.processing.preprocess import NETWORK_INPUT_DTYPE

INPUT_NAME = "images"
EXPORT_META = "export.json"
INFO_FILE = ArtifactName.INFO.value


def export_filename(runtime_type: RuntimeType | str) -> str:
    """model.onnx or model.pt, Focoos' file names."""
    return f"model.{ModelExtension.from_runtime_type(runtime_type).value}"


def _export_onnx(
    network: Any, example: Any, path: Path, output_names: list[str], opset: int, dynamic: bool
) -> None:
    import onnx
    import torch

    axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}} if dynamic else None
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
            input_names=[INPUT_NAME],
            output_names=output_names,
            dynamic_axes=axes,
            do_constant_folding=True,
        )
    onnx.checker.check_model(str(path))


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
    onnx_opset: int = 18,
    device: str = "cpu",
    overwrite: bool = True,
    image_size: int | tuple[int, int] | None = None,
    dynamic_axes: bool = True,
) -> Path:
    """Write the model file, model_info.json and export.json into out_dir and return out_dir."""
    import torch

    out_dir = Path(out_dir)
    filename = export_filename(runtime_type)
    if (out_dir / filename).exists() and not overwrite:
        raise ExportError(f"{out_dir / filename} exists; pass overwrite=True to replace it")
    if image_size is not None:
        info = ModelInfo.validated("export image_size", **{**info.model_dump(), "im_size": image_size})
    output_names = list(network.output_names)
    height, width = info.input_hw
    example = torch.from_numpy(np.zeros((1, 3, height, width), dtype=NETWORK_INPUT_DTYPE)).to(device)
    network = network.to(device).eval()
    meta = {
        "runtime_type": runtime_type.value,
        "file": filename,
        "input_name": INPUT_NAME,
        "input_dtype": np.dtype(NETWORK_INPUT_DTYPE).name,
        "output_names": output_names,
        "onnx_opset": onnx_opset if runtime_type.is_onnx else None,
        "dynamic_axes": dynamic_axes,
    }

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        if runtime_type == RuntimeType.TORCHSCRIPT_32:
            _export_torchscript(network, example, tmp / filename, meta)
        else:
            _export_onnx(network, example, tmp / filename, output_names, onnx_opset, dynamic_axes)
        info.dump_json(tmp / INFO_FILE)
        (tmp / EXPORT_META).write_text(json.dumps(meta, indent=2))
        out_dir.mkdir(exist_ok=True)
        for name in (filename, INFO_FILE, EXPORT_META):  # only these names: the folder's other files stay
            (tmp / name).replace(out_dir / name)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"export of {info.name} to {runtime_type.value} failed: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
