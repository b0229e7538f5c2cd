"""Swap the version a server answers with while it serves: roll a new version out, or the last one back.

The server runs in explicit model-control mode, so it reads the repository only when asked to load.
A roll-out is all or nothing:
1. one swap per repository at a time (an fcntl lock on a file in the repository);
2. the new version is built outside the repository and checked against what the server answers with
   now: same task and outputs (unless forced), same inputs; then its network step is loaded on the
   server under another name from the built files (a trial load: its backend, target and runtime
   must load on *this* server), and unloaded again;
3. only then are its folders moved in and the ensemble loaded: Triton loads the new version of every
   step, switches to it and unloads the old one once its calls in flight have finished;
4. every step must be READY at the new version and the ensemble must answer a warm-up call; only then
   are old versions pruned (the newest `keep` stay, so there is always one to roll back to).
On any failure after step 3 the new folders are moved out, the previous configs restored and loaded
again, and a SwapError says why. A roll-back retires the newest version the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from focoos.client.control import ModelControl
from focoos.client.errors import ModelNotFound, TritonClientError
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2 as mc

from .configs import CONFIG_FILE, VERSION_CONFIG_FILE, StepNames, model_versions, read_config, target_runtime
from .repository import RepositoryBuilder, RepositoryError, ServedModel

if TYPE_CHECKING:
    from focoos.focoos_model import FocoosModel

DEFAULT_KEEP_VERSIONS = 2
LOCK_FILE = ".focoos-swap.lock"  # a file, not a folder: a server loading every folder at start ignores it
TRIAL_SUFFIX = ".swap-trial"  # the name a new network step is trial-loaded under


class SwapError(RepositoryError):
    """A swap was refused or undone: the server answers with the version it had before."""


class SwapLocked(SwapError):
    """Another swap of the same repository is running."""


@contextlib.contextmanager
def swap_lock(root: Path, timeout_s: float = 0.0) -> Iterator[None]:
    """Hold the repository's swap lock; waits up to `timeout_s` (0: refuse at once) for another swap to end.
    The lock is the kernel's (flock), so a swap that dies releases it."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a+") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise SwapLocked(f"another swap of {root} is running ({holder}): nothing was changed; try again "
                                     f"when it has finished, or wait for it (lock_timeout_s, --lock-timeout)") from None
                time.sleep(0.2)
        try:
            handle.truncate(0)
            handle.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
            handle.flush()
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


def served_config(control: ModelControl, name: str) -> mc.ModelConfig | None:
    """The config of the ensemble the server answers with now (None when it serves no `name`)."""
    try:
        return json_format.ParseDict(control.config(name), mc.ModelConfig(), ignore_unknown_fields=True)
    except ModelNotFound:
        return None


def served_build_options(config: mc.ModelConfig | None) -> dict[str, Any]:
    """Target, runtime and batch size of the served version: a new version is built the same way unless told."""
    if config is None:
        return {}
    params = {key: value.string_value for key, value in config.parameters.items()}
    options: dict[str, Any] = {"max_batch_size": config.max_batch_size}
    if "target" in params:
        options["target"] = params["target"]
        with contextlib.suppress(ValueError):  # a label this builder no longer builds: the target's default
            options["runtime_type"] = target_runtime(params["target"], params.get("runtime_type"))
    return options


def check_task(served: mc.ModelConfig | None, task: str, *, force: bool = False) -> None:
    """Callers of a served name get the answers of its task: another task needs `force` (checked before building)."""
    served_task = served.parameters["task"].string_value if served is not None else task
    if task != served_task and not force:
        raise SwapError(f"{served.name} serves {served_task} and the new version is {task}: its callers would get "
                        f"other answers under the same name; serve it under another name, or force the swap "
                        f"(force=True, --force)")


def check_compatible(new: mc.ModelConfig, served: mc.ModelConfig | None, *, force: bool = False) -> None:
    """Callers of the served name keep working: same inputs; same outputs unless `force`."""
    if served is None:
        return

    def tensors(items: Any, dims: bool = True) -> list[tuple]:
        return sorted((t.name, mc.DataType.Name(t.data_type), *([list(t.dims)] if dims else [])) for t in items)

    if tensors(new.input) != tensors(served.input):
        raise SwapError(f"{served.name}: the new version takes inputs {tensors(new.input)}, the served one "
                        f"{tensors(served.input)}: its callers would fail")
    if not force and tensors(new.output, dims=False) != tensors(served.output, dims=False):  # top_k may change dims
        raise SwapError(f"{served.name}: the new version answers {tensors(new.output, dims=False)}, the served one "
                        f"{tensors(served.output, dims=False)}; force the swap (force=True, --force) if its callers "
                        f"expect that")


def trial_load(control: ModelControl, built: Path, step: str) -> None:
    """Load the newest built version of a step on the server under another name, then unload it:
    a version whose backend, target or runtime this server cannot load is refused here."""
    config = read_config(built / step)
    config.name = step + TRIAL_SUFFIX
    folder = built / step / str(model_versions(built / step)[-1])
    files = {f"file:1/{p.relative_to(folder).as_posix()}": p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    try:
        control.load(config.name, config=json_format.MessageToJson(config), files=files)
    except TritonClientError as exc:
        raise SwapError(f"the new version of {step} ({config.backend or config.platform} backend) cannot load on "
                        f"{control.url}, nothing was changed: {exc}") from None
    finally:
        with contextlib.suppress(TritonClientError):
            control.unload(config.name)


def _move_version(source: Path, target: Path) -> None:
    """One step's version folder and its config.pbtxt from one repository to another."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, target)
    shutil.copy(source.parent / CONFIG_FILE, target.parent / CONFIG_FILE)


def _restore_configs(root: Path, names: StepNames) -> None:
    """Each step's config.pbtxt becomes the copy kept in its newest version (the step goes if none is left)."""
    for step in names.all:
        versions = model_versions(root / step)
        if not versions:
            shutil.rmtree(root / step, ignore_errors=True)
        elif (root / step / str(versions[-1]) / VERSION_CONFIG_FILE).is_file():
            shutil.copy(root / step / str(versions[-1]) / VERSION_CONFIG_FILE, root / step / CONFIG_FILE)


def _verify(control: ModelControl, names: StepNames, version: int) -> None:
    """Every step READY at `version`, and the ensemble answers a call."""
    not_ready = [step for step in names.all if version not in control.ready_versions(step)]
    if not_ready:
        states = [m for m in control.index() if m["name"] in not_ready]
        raise SwapError(f"not READY at version {version}: {', '.join(not_ready)} (server: {states})")
    control.warm_up(names.ensemble)


def _retire(control: ModelControl, root: Path, names: StepNames, version: int, aside: Path) -> int:
    """Move `version` of every step out to `aside`, restore the configs of the newest version left, load it and
    verify it; returns it."""
    for step in names.all:
        if (root / step / str(version)).is_dir():
            shutil.move(root / step / str(version), aside / step)
    _restore_configs(root, names)
    if not (root / names.ensemble).is_dir():  # a name the server did not serve before
        for step in names.all:
            with contextlib.suppress(TritonClientError):
                control.unload(step)
        return 0
    previous = model_versions(root / names.ensemble)[-1]
    control.load(names.ensemble)
    _verify(control, names, previous)
    return previous


def roll_out(
    repository: str | Path, model: FocoosModel, control: ModelControl, *, name: str | None = None,
    keep: int = DEFAULT_KEEP_VERSIONS, force: bool = False, lock_timeout_s: float = 0.0, **build_options: Any,
) -> ServedModel:
    """Make the server answer with `model` as the newest version of `name`, or raise a SwapError and leave it
    answering as before. Build options not given (runtime_type, target, max_batch_size) are the served
    version's; `force` allows another task or outputs; `lock_timeout_s`: how long to wait for another swap."""
    root, names = Path(repository), StepNames(name or model.model_info.name)
    with swap_lock(root, lock_timeout_s), tempfile.TemporaryDirectory(prefix="focoos-swap-") as scratch:
        served = served_config(control, names.ensemble)
        check_task(served, model.model_info.task.value, force=force)
        built = Path(scratch) / "built"
        inherited = served_build_options(served)
        if {"target", "runtime_type"} & build_options.keys():  # a target or runtime given: not the served pair
            inherited = {k: v for k, v in inherited.items() if k not in ("target", "runtime_type")}
        RepositoryBuilder(built).add(model, name=names.ensemble, **{**inherited, **build_options})
        check_compatible(read_config(built / names.ensemble), served, force=force)
        trial_load(control, built, names.network)
        version = max((v for step in names.all for v in model_versions(root / step)), default=0) + 1
        try:
            for step in (names.preprocess, names.network, names.postprocess, names.ensemble):  # ensemble last
                _move_version(built / step / str(model_versions(built / step)[-1]), root / step / str(version))
            control.load(names.ensemble)
            _verify(control, names, version)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the previous version must serve again
            (Path(scratch) / "failed").mkdir()
            try:
                previous = _retire(control, root, names, version, Path(scratch) / "failed")
            except (TritonClientError, SwapError) as undo:
                raise SwapError(f"{names.ensemble}: version {version} failed and was moved out, but the previous "
                                f"version did not come back: {undo}; the failure: {exc}") from None
            raise SwapError(f"{names.ensemble}: version {version} failed and was moved out, the server answers "
                            f"with version {previous} again: {exc}") from None
        RepositoryBuilder(root).prune(names.ensemble, keep)
    return RepositoryBuilder(root).get(names.ensemble)


def roll_back(repository: str | Path, name: str, control: ModelControl, *, lock_timeout_s: float = 0.0) -> ServedModel:
    """Retire the newest version of `name` and make the server answer with the one before it."""
    root, names = Path(repository), StepNames(name)
    with swap_lock(root, lock_timeout_s), tempfile.TemporaryDirectory(prefix="focoos-retired-") as aside:
        versions = RepositoryBuilder(root).get(name).versions
        if len(versions) < 2:
            raise RepositoryError(f"{name} has only version(s) {versions} in {repository}: nothing to roll back to")
        try:
            _retire(control, root, names, versions[-1], Path(aside))
        except (TritonClientError, SwapError) as exc:  # put the newest back: the server answers with it again
            for step in names.all:
                if (Path(aside) / step).is_dir():
                    shutil.move(Path(aside) / step, root / step / str(versions[-1]))
            _restore_configs(root, names)
            with contextlib.suppress(TritonClientError):
                control.load(name)
            raise SwapError(f"{name}: rolling back to version {versions[-2]} failed, version {versions[-1]} is "
                            f"back in place: {exc}") from None
    return RepositoryBuilder(root).get(name)
