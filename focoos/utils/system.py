"""Focoos' system facts (`get_system_info`, `SystemInfo`, GPU and CPU names) for bug reports and `focoos checks`.

Everything is read on call, with the standard library; torch and onnxruntime are asked only when installed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from typing import Any, Literal

from pydantic import BaseModel

from focoos.utils.logger import get_logger

__all__ = [
    "GPUDevice", "GPUInfo", "SystemInfo", "get_cpu_name", "get_cuda_version", "get_device_name", "get_device_type",
    "get_gpu_info", "get_gpus_count", "get_system_info",
]

PACKAGES = ("focoos", "torch", "torchvision", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "numpy",
            "opencv-python-headless", "pillow", "pydantic", "supervision", "tritonclient", "nvidia-pytriton")


class GPUDevice(BaseModel):
    gpu_id: int | None = None
    gpu_name: str | None = None
    gpu_memory_total_gb: float | None = None
    gpu_memory_used_percentage: float | None = None
    gpu_temperature: float | None = None
    gpu_load_percentage: float | None = None


class GPUInfo(BaseModel):
    gpu_count: int | None = None
    gpu_driver: str | None = None
    gpu_cuda_version: str | None = None
    total_gpu_memory_gb: float | None = None
    devices: list[GPUDevice] | None = None
    mps_available: bool | None = None


class SystemInfo(BaseModel):
    """The machine, the Python environment and the accelerators, as Focoos reports them."""

    focoos_host: str | None = None
    focoos_version: str | None = None
    python_version: str | None = None
    system: str | None = None
    system_name: str | None = None
    cpu_type: str | None = None
    cpu_cores: int | None = None
    memory_gb: float | None = None
    memory_used_percentage: float | None = None
    available_onnx_providers: list[str] | None = None
    disk_space_total_gb: float | None = None
    disk_space_used_percentage: float | None = None
    pytorch_info: str | None = None
    gpu_info: GPUInfo | None = None
    packages_versions: dict[str, str] | None = None
    environment: dict[str, str] | None = None

    @classmethod
    def from_json(cls, data: str | dict[str, Any]) -> SystemInfo:
        if isinstance(data, str):
            return cls.model_validate_json(open(data, encoding="utf-8").read())
        return cls.model_validate(data)

    def pprint(self, level: Literal["INFO", "DEBUG"] = "DEBUG") -> None:
        """Log one line per fact (at INFO, so it shows once logging is configured) and print them."""
        lines = ["SYSTEM INFO"]
        for key, value in self.model_dump(exclude_none=True).items():
            if isinstance(value, dict):
                lines.append(f"{key}:")
                lines += [f"  - {k}: {v}" for k, v in value.items()]
            else:
                lines.append(f"{key}: {value}")
        text = "\n".join(lines)
        get_logger("SystemInfo", level=level).info(text)
        print(text)


def _torch() -> Any:
    """torch if it is installed (imported on demand: system facts must not require it)."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return torch


def get_gpus_count() -> int:
    """CUDA devices (1 for Apple's MPS), 0 without a GPU or without torch: Focoos' default `num_gpus`."""
    torch = _torch()
    if torch is None:
        return 0
    if torch.cuda.is_available():
        return torch.cuda.device_count()
    return 1 if torch.backends.mps.is_available() else 0


def _nvidia_smi(query: str) -> list[list[str]]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [[cell.strip() for cell in line.split(",")] for line in out.splitlines() if line.strip()]


def get_cuda_version() -> str | None:
    """The CUDA version of the driver (nvidia-smi), else the one torch was built with; None without CUDA."""
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        if "CUDA Version:" in out:
            return out.split("CUDA Version:")[1].split()[0]
    torch = _torch()
    return getattr(torch.version, "cuda", None) if torch is not None and torch.cuda.is_available() else None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def get_gpu_info() -> GPUInfo:
    """GPUs as nvidia-smi reports them (memory in GB, load and memory use in %)."""
    rows = _nvidia_smi("index,name,memory.total,memory.used,temperature.gpu,utilization.gpu,driver_version")
    devices = []
    for index, name, total, used, temperature, load, _ in rows:
        total_mb, used_mb = _number(total), _number(used)
        devices.append(GPUDevice(
            gpu_id=int(index), gpu_name=name,
            gpu_memory_total_gb=round(total_mb / 1024, 3) if total_mb else None,
            gpu_memory_used_percentage=round(100 * used_mb / total_mb, 2) if total_mb and used_mb is not None else None,
            gpu_temperature=_number(temperature), gpu_load_percentage=_number(load),
        ))
    torch = _torch()
    mps = bool(torch is not None and torch.backends.mps.is_available())
    return GPUInfo(
        gpu_count=len(devices) or get_gpus_count(),
        gpu_driver=rows[0][6] if rows else None,
        gpu_cuda_version=get_cuda_version(),
        total_gpu_memory_gb=round(sum(d.gpu_memory_total_gb or 0 for d in devices), 3) if devices else None,
        devices=devices or None,
        mps_available=mps,
    )


def get_cpu_name() -> str:
    """The CPU model name (from /proc/cpuinfo on Linux, else the platform's processor string)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def get_device_type() -> Literal["cuda", "cpu"]:
    torch = _torch()
    return "cuda" if torch is not None and torch.cuda.is_available() else "cpu"


def get_device_name() -> str:
    """The first GPU's name when CUDA is available, else the CPU's."""
    torch = _torch()
    if torch is not None and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return get_cpu_name()


def _memory() -> tuple[float | None, float | None]:
    try:
        fields = {}
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                key, value = line.split(":", 1)
                fields[key] = float(value.split()[0]) * 1024
        total, available = fields["MemTotal"], fields.get("MemAvailable", fields["MemFree"])
        return round(total / 2**30, 3), round(100 * (total - available) / total, 2)
    except (OSError, KeyError, ValueError):
        return None, None


def _package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def get_system_info() -> SystemInfo:
    """Facts about this machine and environment (Focoos' `get_system_info`); FOCOOS_* variables included,
    the API key masked."""
    from focoos import settings
    from focoos.version import __version__

    memory_gb, memory_used = _memory()
    disk = shutil.disk_usage(os.path.expanduser("~"))
    providers = None
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime

        providers = list(onnxruntime.get_available_providers())
    torch = _torch()
    return SystemInfo(
        focoos_host=settings.hub_url(),
        focoos_version=__version__,
        python_version=sys.version.split()[0],
        system=platform.system(),
        system_name=platform.node(),
        cpu_type=get_cpu_name(),
        cpu_cores=os.cpu_count(),
        memory_gb=memory_gb,
        memory_used_percentage=memory_used,
        available_onnx_providers=providers,
        disk_space_total_gb=round(disk.total / 2**30, 2),
        disk_space_used_percentage=round(100 * disk.used / disk.total, 2),
        pytorch_info=f"{torch.__version__} (cuda: {torch.cuda.is_available()})" if torch is not None else None,
        gpu_info=get_gpu_info(),
        packages_versions=_package_versions(),
        environment=settings.describe(),
    )
