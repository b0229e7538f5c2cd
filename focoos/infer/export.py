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
) -> Path:
    """Write the model file, model_info.json and export.json into out_dir and return out_dir."""
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
    }

    failed = f"export of {info.name} to {runtime_type.value} failed"
    with staging_dir(out_dir.parent, f".{out_dir.name}-", ExportError, failed) as tmp:
        if runtime_type == RuntimeType.TORCHSCRIPT_32:
            _export_torchscript(network, example, tmp / filename, meta)
        else:
            _export_onnx(network, example, tmp / filename, output_names, onnx_opset, dynamic_axes)
        info.dump_json(tmp / INFO_FILE)
        (tmp / EXPORT_META).write_text(json.dumps(meta, indent=2))
        out_dir.mkdir(exist_ok=True)
        for name in (filename, INFO_FILE, EXPORT_META):  # only these names: the folder's other files stay
            (tmp / name).replace(out_dir / name)
    return out_dir
