"""The package as users install it: an sdist, a wheel built from it, a fresh venv holding only that
wheel (it builds and serves a repository) and a client-only venv (no torch, no onnxruntime) that calls it.

Nothing here imports the checkout in the venvs: they run from a folder outside it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import tomllib
from focoos.builder.server import free_port
from focoos.builder.watchdog import group_members, group_shm_regions

import focoos
from tests.tls_certs import make_pki

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# source folder -> where it lands in the wheel, from pyproject's package-dir
PACKAGE_DIRS = {folder: package.replace(".", "/") for package, folder in tomllib.loads(
    (ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].items()}
MODEL = "fai-detr-n-digits"
# Lines a build of ours must never print (setuptools' configuration and deprecation warnings).
OUR_BUILD_WARNINGS = re.compile(r"SetuptoolsDeprecationWarning|_DeprecatedConfig|is absent from|BuildBackendWarning"
                                r"|license.*deprecated", re.IGNORECASE)


def run(command: list[str], cwd: Path, timeout: float = 300, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def source_files() -> list[str]:
    """What a clone holds (tracked and new, not ignored), so local build/ or venvs never leak into the build."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, timeout=60)
    if listed.returncode != 0:
        pytest.skip("the install tests copy the source tree with git ls-files")
    return [f for f in listed.stdout.decode().split("\0") if f and (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """`python -m build` on a copy of the tree: the sdist, then the wheel built from that sdist."""
    work = tmp_path_factory.mktemp("dist")
    source = work / "src"
    for name in source_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(work / "dist"), str(source)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    [sdist] = (work / "dist").glob("*.tar.gz")
    [wheel] = (work / "dist").glob("*.whl")
    return {"sdist": sdist, "wheel": wheel, "log": done.stdout + done.stderr, "source": source}


def test_build_prints_no_warnings_of_ours(dist: dict) -> None:
    ours = [line for line in dist["log"].splitlines() if OUR_BUILD_WARNINGS.search(line)]
    assert not ours, "\n".join(ours)


def test_wheel_and_sdist_carry_every_module_and_data_file(dist: dict) -> None:
    """Each package folder's .py files, the registry and its bundled weights: a subpackage setup.py failed to
    find would be absent here (and absent for every user)."""
    sources = [n for n in source_files() if n.partition("/")[0] in PACKAGE_DIRS
               and (n.endswith(".py") or n.startswith("focoos/registry/"))]
    expected = {f"{PACKAGE_DIRS[n.partition('/')[0]]}/{n.partition('/')[2]}" for n in sources}
    assert any(n.endswith(".pth") for n in expected) and any(n.startswith("focoos/builder/python_models/")
                                                             for n in expected)
    in_wheel = set(zipfile.ZipFile(dist["wheel"]).namelist())
    assert expected <= in_wheel, f"missing from the wheel: {sorted(expected - in_wheel)}"
    with tarfile.open(dist["sdist"]) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    needed = {"pyproject.toml", "README.md", *sources}
    assert needed <= members, f"missing from the sdist: {sorted(needed - members)}"
    version = re.search(r"^Version: (.+)$", zipfile.ZipFile(dist["wheel"]).read(
        f"focoos-{focoos.__version__}.dist-info/METADATA").decode(), re.M)
    assert version and version[1] == focoos.__version__


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the dev venv's traces (the FOCOOS_* test folders stay)."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    return {**env, **extra}


@pytest.fixture(scope="module")
def venvs(dist: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Two fresh venvs, installed side by side: the wheel with the server extras, and the wheel's client alone."""
    root = tmp_path_factory.mktemp("venvs")
    wheel = dist["wheel"]
    wanted = {"server": f"{wheel}[server,torch,onnx]", "client": f"{wheel}[client]"}
    jobs = {}
    for name, requirement in wanted.items():
        script = (f"{sys.executable} -m venv {root / name} && "
                  f"{root / name / 'bin/pip'} install -qq --no-compile --disable-pip-version-check '{requirement}'")
        jobs[name] = subprocess.Popen(["sh", "-c", script], cwd=root, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, env=clean_env())
    for name, job in jobs.items():
        output, _ = job.communicate(timeout=900)
        assert job.returncode == 0, f"installing {wanted[name]} failed:\n{output}"
    # Left to pytest, which keeps the last three runs' temporary folders: deleting gigabytes of torch here
    # took 19 s of every run.
    yield {name: root / name for name in wanted}


def python_in(venv: Path, code: str, cwd: Path) -> str:
    return run([str(venv / "bin/python"), "-c", code], cwd=cwd, env=clean_env()).strip()


def server_pid(grpc_port: int) -> int | None:
    """The tritonserver listening on this gRPC port (found by command line, as `ps` would)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if f"--grpc-port={grpc_port}" in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    return int(entry.name)
    return None


def test_wheel_venv_serves_and_client_only_venv_calls(venvs: dict[str, Path], tmp_path: Path) -> None:
    server_venv, client_venv = venvs["server"], venvs["client"]
    site = python_in(server_venv, "import focoos, focoos.builder.repository as r; print(r.PROCESSING_DIR)", tmp_path)
    assert Path(site).is_relative_to(server_venv) and "site-packages" in site
    assert run([str(server_venv / "bin/focoos"), "--version"], tmp_path).strip() == f"focoos {focoos.__version__}"
    missing = python_in(client_venv, "import importlib.util as u; print([m for m in ('torch', 'onnxruntime', "
                                     "'torchvision') if u.find_spec(m)])", tmp_path)
    assert missing == "[]", f"the client extra pulled in {missing}"

    repository = tmp_path / "repository"
    out = run([str(server_venv / "bin/focoos"), "build", "--model", MODEL, "--runtime", "onnx_cpu", "--target",
               "embedded", "--repository", str(repository), "--max-batch-size", "2"], tmp_path, env=clean_env())
    assert f"built {MODEL} version 1" in out

    from focoos.samples import digit_canvases

    image = tmp_path / "digits.png"
    canvas = next(iter(digit_canvases(count=1).values()))
    cv2.imwrite(str(image), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
    pki = make_pki(tmp_path / "pki")  # gRPC over TLS: the installed serve, predict and bench take the cert options
    serve = subprocess.Popen(
        [str(server_venv / "bin/focoos"), "serve", "--repository", str(repository), "--grpc-port", str(grpc_port),
         "--http-port", str(http_port), "--metrics-port", str(metrics_port), "--tls-cert", str(pki.server.cert),
         "--tls-key", str(pki.server.key)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env(),
    )
    pid = None
    try:
        banner = serve.stdout.readline()  # printed once every model is ready (or EOF if serve failed)
        assert banner.startswith("serving"), banner + serve.stdout.read()
        pid = server_pid(grpc_port)
        assert pid is not None and group_members(pid)
        regions = group_shm_regions(pid)
        assert regions
        url = f"127.0.0.1:{grpc_port}"

        client = str(client_venv / "bin/focoos")
        run([client, "predict", "--url", url, "--model", MODEL, "--source", str(image), "--conf", "0.5",
             "--output-dir", str(tmp_path / "predictions"), "--tls-ca", str(pki.ca)], tmp_path, env=clean_env())
        served = json.loads((tmp_path / "predictions" / "digits_detections.json").read_text())["detections"]
        local = focoos.ModelManager.get(MODEL, device="cpu").infer(str(image), threshold=0.5).detections
        assert len(served) == len(local) > 0
        for s, loc in zip(sorted(served, key=lambda d: d["bbox"]), sorted(local, key=lambda d: d.bbox), strict=True):
            assert s["cls_id"] == loc.cls_id and s["label"] == loc.label
            np.testing.assert_allclose(s["bbox"], loc.bbox, atol=2)
            assert abs(s["conf"] - loc.conf) < 1e-3

        (tmp_path / "images").mkdir()
        shutil.copy(image, tmp_path / "images" / image.name)
        bench = run([client, "bench", "--url", url, "--model", MODEL, "--images", str(tmp_path / "images"),
                     "--concurrency", "2", "--duration", "2", "--warmup", "0.5", "--json", "--no-progress",
                     "--tls-ca", str(pki.ca)],
                    tmp_path, env=clean_env())
        [level] = json.loads(bench)
        assert level["requests"] > 0 and level["errors"] == 0, level

        serve.kill()  # SIGKILL the installed `focoos serve`: its watchdog must stop the server group
        serve.wait(timeout=30)
        deadline = time.monotonic() + 30
        while group_members(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert group_members(pid) == [], "tritonserver or its stubs outlived the killed `focoos serve`"
        assert not [r for r in regions if r.exists()], "shared memory outlived the killed `focoos serve`"
    finally:
        serve.kill()
        serve.wait()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
