"""The hub client against a real hub stand-in process (tests/hub_server.py) on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from focoos import (
    DatasetLayout,
    DatasetSplitType,
    ModelFamily,
    ModelInfo,
    ModelManager,
    ModelNotFoundError,
    Task,
    TrainerArgs,
)
from focoos.hub import (
    FocoosHUB,
    HubAuthError,
    HubCacheWarning,
    HubError,
    HubNotFoundError,
    HubUnreachableError,
    ModelStatus,
)
from tests import hub_server
from tests.conftest import detr_config, quiet_get, small_detr_info, write_coco_split

SERVER = Path(hub_server.__file__)
ALICE_KEY, BOB_KEY = "alice-key-0123", "bob-key-4567"
BOXES = {"red": [20, 30, 100, 120], "green": [170, 70, 100, 100], "blue": [150, 170, 150, 60]}  # xywh


class HubProcess:
    """tests/hub_server.py as a child process over `root`; stop() always reaps it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> None:
        port_file = self.root / "port"
        port_file.unlink(missing_ok=True)
        with (self.root / "server.log").open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(SERVER), "--root", str(self.root), "--port-file",
                                          str(port_file)], stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 15
        while not port_file.is_file():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"hub server did not start: {(self.root / 'server.log').read_text()}")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port_file.read_text()}/v0"

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def calls(self, path_part: str = "") -> list[dict]:
        return [c for c in hub_server.read_calls(self.root) if path_part in c["path"]]


@pytest.fixture(autouse=True)
def _own_folders(tmp_path, monkeypatch):
    """Each test gets empty models/datasets folders and may reach the (loopback) hub."""
    monkeypatch.setenv("FOCOOS_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("FOCOOS_DATASETS_DIR", str(tmp_path / "datasets"))
    monkeypatch.delenv("FOCOOS_OFFLINE", raising=False)
    monkeypatch.delenv("FOCOOS_API_KEY", raising=False)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    """A tiny DETR saved with FocoosModel.save(): the weights the hub serves."""
    return quiet_get("tiny-detr", model_info=small_detr_info(), device="cpu").save(
        tmp_path_factory.mktemp("saved") / "tiny-detr")


@pytest.fixture(scope="module")
def shapes_zip(tmp_path_factory) -> Path:
    """A Roboflow-style COCO dataset zip (train/ and valid/ at the top) of the conftest scene."""
    root = tmp_path_factory.mktemp("shapes")
    for split, count in (("train", 4), ("valid", 2)):
        write_coco_split(root / "shapes" / split, count, BOXES)
    archive = root / "shapes.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((root / "shapes").rglob("*")):
            zf.write(path, path.relative_to(root / "shapes").as_posix())
    return archive


@pytest.fixture()
def hub(tmp_path, saved_model, shapes_zip):
    """A running hub with users alice and bob, a model and datasets each; yields the process."""
    root = tmp_path / "hub"
    hub_server.add_user(root, "u-alice", ALICE_KEY, "alice@example.com")
    hub_server.add_user(root, "u-bob", BOB_KEY, "bob@example.com")
    info = json.loads((saved_model / "model_info.json").read_text())
    hub_server.add_model(root, "m-alice", "u-alice", info, saved_model / "model_final.pth")
    hub_server.add_model(root, "m-bob", "u-bob", info, saved_model / "model_final.pth")
    hub_server.add_dataset(root, "d-alice", "u-alice", "shapes", "detection", "roboflow_coco", shapes_zip)
    hub_server.add_dataset(root, "d-bob-shared", "u-bob", "bob-shapes", "detection", "roboflow_coco", shapes_zip,
                           shared=True)
    hub_server.add_dataset(root, "d-bob-private", "u-bob", "secret", "detection", "roboflow_coco", shapes_zip)
    process = HubProcess(root)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _alice(hub: HubProcess, **kwargs) -> FocoosHUB:
    return FocoosHUB(api_key=ALICE_KEY, host_url=hub.url, **kwargs)


def _detections(model, scene) -> list[dict]:
    return [d.model_dump() for d in model.infer(scene, threshold=0.0).detections]


def test_user_info_and_listings_use_focoos_endpoints_and_headers(hub, monkeypatch):
    monkeypatch.setenv("FOCOOS_API_KEY", ALICE_KEY)
    monkeypatch.setenv("DEFAULT_HOST_URL", hub.url)
    client = FocoosHUB()  # key and host from the settings
    assert client.user_info.email == "alice@example.com" and client.user_info.api_key.key == ALICE_KEY
    assert client.user_info.quotas.max_storage_gb == 10.0
    assert [m.ref for m in client.list_remote_models()] == ["m-alice"]  # only the account's own
    assert client.list_remote_models()[0].status == ModelStatus.TRAINING_COMPLETED
    assert [d.ref for d in client.list_remote_datasets()] == ["d-alice"]
    assert [d.ref for d in client.list_remote_datasets(include_shared=True)] == ["d-alice", "d-bob-shared"]
    assert client.get_model_info("m-alice").model_family == "fai_detr"
    paths = [c["path"] for c in hub.calls()]
    assert paths[:2] == ["/v0/user/", "/v0/models/"] and "/v0/datasets/shared" in paths
    assert {c["headers"]["user_agent"].split("/")[0] for c in hub.calls()} == {"focoos"}


def test_hub_model_loads_with_the_same_outputs_as_the_local_weights(hub, saved_model, scene, tmp_path):
    client = _alice(hub)
    model = ModelManager.get("hub://m-alice", hub=client, device="cpu")
    local = ModelManager.get(str(saved_model), device="cpu")
    assert model.classes == local.classes and model.model_info.ref == "m-alice"
    assert _detections(model, scene) == _detections(local, scene)
    cached = tmp_path / "models" / "m-alice"
    assert sorted(p.name for p in cached.iterdir()) == ["model_final.pth", "model_info.json"]
    assert [c["query"] for c in hub.calls("/download")] == [{"format": "pth"}]
    # the cache folder is a plain model folder
    assert _detections(ModelManager.get(str(cached), device="cpu"), scene) == _detections(local, scene)


def test_cache_is_reused_refreshed_when_retrained_and_loaded_offline(hub, saved_model, scene, tmp_path,
                                                                   monkeypatch):
    client = _alice(hub)
    first = _detections(ModelManager.get("hub://m-alice", hub=client, device="cpu"), scene)
    ModelManager.get("hub://m-alice", hub=client, device="cpu")
    assert len(hub.calls("/download")) == 1  # unchanged on the hub: weights reused

    retrained = quiet_get("tiny-detr", model_info=small_detr_info(), device="cpu")
    with torch.no_grad():
        for p in retrained.model.parameters():
            p.mul_(1.1)
    retrained.save(tmp_path / "retrained")
    info = json.loads((saved_model / "model_info.json").read_text())
    hub_server.add_model(hub.root, "m-alice", "u-alice", info, tmp_path / "retrained" / "model_final.pth",
                         updated_at="2099-01-01T00:00:00+00:00")
    second = _detections(ModelManager.get("hub://m-alice", hub=client, device="cpu"), scene)
    assert len(hub.calls("/download")) == 2 and second != first  # new updated_at: downloaded again

    hub.stop()
    with pytest.warns(HubCacheWarning, match="unreachable"):
        offline = ModelManager.get("hub://m-alice", hub=client, device="cpu")
    assert _detections(offline, scene) == second
    with pytest.raises(HubUnreachableError, match="127.0.0.1"):
        ModelManager.get("hub://m-alice", hub=client, cache=False, device="cpu")
    monkeypatch.setenv("FOCOOS_OFFLINE", "1")
    assert _detections(ModelManager.get("hub://m-alice", device="cpu"), scene) == second  # no key, no hub
    with pytest.raises(HubUnreachableError, match="FOCOOS_OFFLINE"):
        ModelManager.get("hub://never-downloaded", device="cpu")


def test_wrong_key_foreign_and_unknown_refs_raise_typed_errors(hub, tmp_path):
    with pytest.raises(HubAuthError, match="FOCOOS_API_KEY"):
        FocoosHUB(host_url=hub.url)  # no key anywhere
    with pytest.raises(HubAuthError, match=r"/v0/user/ -> HTTP 401") as wrong:
        FocoosHUB(api_key="not-a-key", host_url=hub.url)
    assert wrong.value.status_code == 401
    client = _alice(hub)
    with pytest.raises(HubAuthError, match="HTTP 403") as foreign:
        ModelManager.get("hub://m-bob", hub=client, device="cpu")
    assert foreign.value.status_code == 403 and "models/m-bob" in str(foreign.value)
    with pytest.raises(HubNotFoundError, match=r"models/nope -> HTTP 404") as unknown:
        ModelManager.get("hub://nope", hub=client, device="cpu")
    assert isinstance(unknown.value, ModelNotFoundError)
    with pytest.raises(HubAuthError, match="HTTP 403"):
        client.get_remote_dataset("d-bob-private")
    with pytest.raises(HubError, match="invalid hub reference"):
        ModelManager.get("hub://../escape", hub=client, device="cpu")
    assert not (tmp_path / "models").exists()  # nothing was cached for any of them


def test_slow_hub_times_out_and_dropped_download_leaves_no_file(hub, tmp_path):
    client = _alice(hub, timeout_s=0.5)
    hub_server.set_knobs(hub.root, delay_s=3, delay_path="/v0/models/m-alice")
    with pytest.raises(HubUnreachableError, match=r"no answer within 0.5 s"):  # not after the hub's 3 s
        client.get_model_info("m-alice")

    hub_server.set_knobs(hub.root, drop_after_bytes=4096)
    with pytest.raises(HubUnreachableError, match="m-alice"):
        ModelManager.get("hub://m-alice", hub=client, device="cpu")
    folder = tmp_path / "models" / "m-alice"
    assert list(folder.iterdir()) == []  # no weights, no .part file, no model_info.json


def test_dataset_downloads_into_the_datasets_folder_and_uploads(hub, tmp_path, shapes_zip):
    client = _alice(hub)
    dataset = client.get_remote_dataset("d-alice")
    assert (dataset.name, dataset.task, dataset.layout) == ("shapes", Task.DETECTION, DatasetLayout.ROBOFLOW_COCO)
    assert dataset.metadata.spec.train_length == 4 and dataset.metadata.spec.valid_length == 2
    path = Path(dataset.download_data())
    assert path == tmp_path / "datasets" / "shapes.zip" and path.read_bytes() == shapes_zip.read_bytes()
    assert dataset.download_data() == str(path) and len(hub.calls("/files/")) == 0  # presigned, not logged
    train = _open_split(path, DatasetSplitType.TRAIN)
    assert len(train) == 4 and list(train.classes) == list(BOXES)
    assert client.get_remote_dataset("d-bob-shared").download_data(tmp_path / "elsewhere").endswith("shapes.zip")

    smaller = tmp_path / "smaller.zip"
    with zipfile.ZipFile(shapes_zip) as src, zipfile.ZipFile(smaller, "w") as dst:
        for name in src.namelist():
            if not name.startswith("valid/1"):
                dst.writestr(name, src.read(name))
    spec = dataset.upload_data(smaller)
    assert (spec.train_length, spec.valid_length) == (4, 1)
    upload = hub.calls("/upload/")[-1]
    assert upload["key"] == "datasets/d-alice/smaller.zip" and upload["fields"][-1] == "signature"


def _open_split(zip_path: Path, split: DatasetSplitType):
    """A downloaded zip read by AutoDataset, which extracts it into the datasets folder once."""
    from focoos.data import AutoDataset, DatasetAugmentations

    dataset = AutoDataset(dataset_name=zip_path.name, task=Task.DETECTION, layout=DatasetLayout.ROBOFLOW_COCO,
                          datasets_dir=zip_path.parent)
    return dataset.get_split(DatasetAugmentations(resolution=160), split)


def _tiny_trainee():
    info = ModelInfo(name="tiny-shapes", model_family=ModelFamily.DETR, task=Task.DETECTION, classes=list(BOXES),
                     im_size=160, config={**detr_config(32, 20, 1, heads=2), "num_classes": 3, "top_k": 20})
    return quiet_get("tiny-shapes", model_info=info, device="cpu")


def _args(tmp_path: Path, run_name: str) -> TrainerArgs:
    return TrainerArgs(run_name=run_name, output_dir=str(tmp_path / "runs"), max_iters=4, batch_size=2, eval_period=2,
                       log_period=1, warmup_iters=1, checkpointer_period=4, learning_rate=1e-4, sync_to_hub=True,
                       device="cpu", workers=0)


def test_training_syncs_status_metrics_and_artifacts_to_the_hub(hub, tmp_path):
    client = _alice(hub)
    zip_path = Path(client.get_remote_dataset("d-alice").download_data())
    train, val = _open_split(zip_path, DatasetSplitType.TRAIN), _open_split(zip_path, DatasetSplitType.VAL)
    info = _tiny_trainee().train(_args(tmp_path, "shapes-run"), train, val, hub=client)

    created = hub.calls("/models/local-model")[0]["json"]
    assert set(created) == {"name", "focoos_model", "description", "config", "task", "classes", "im_size",
                            "train_args", "focoos_version"}
    assert (created["name"], created["focoos_model"], created["task"]) == ("shapes-run", "tiny-shapes", "detection")
    assert created["train_args"]["max_iters"] == 4
    ref = info.ref
    syncs = [c["json"] for c in hub.calls(f"/models/{ref}/sync-local-training")]
    statuses = [s["status"] for s in syncs]
    assert statuses[0] == "TRAINING_RUNNING" and statuses[-1] == "TRAINING_COMPLETED"
    assert set(statuses) == {"TRAINING_RUNNING", "TRAINING_COMPLETED"} and len(syncs) >= 4  # start, 2 evals, end
    final = syncs[-1]
    assert final["iterations"] == 4 and final["metrics"]["iterations"] == 4
    assert "bbox/AP" in final["metrics"]["best_valid_metric"] and len(final["metrics"]["train_metrics"]) == 4
    assert [t["status"] for t in final["training_info"]["status_transitions"]] == [
        "TRAINING_RUNNING", "TRAINING_COMPLETED"]
    upload_requests = [c["json"] for c in hub.calls(f"/models/{ref}/generate-upload-url")]
    assert [u["file_name"] for u in upload_requests] == ["model_final.pth", "metrics.json"]
    run = tmp_path / "runs" / "shapes-run"
    assert upload_requests[0]["file_size_bytes"] == int((run / "model_final.pth").stat().st_size * 1.1)
    assert (hub.root / "models" / ref / "model_final.pth").read_bytes() == (run / "model_final.pth").read_bytes()

    remote = client.get_remote_model(ref)
    assert remote.model_info.status == ModelStatus.TRAINING_COMPLETED and remote.model_info.name == "shapes-run"
    assert remote.train_info().main_status == "TRAINING_COMPLETED"
    assert remote.metrics().best_valid_metric == final["metrics"]["best_valid_metric"]
    assert remote.train_logs() == []  # a completed run uploads weights and metrics only, as in Focoos
    on_disk = json.loads((run / "model_info.json").read_text())
    assert on_disk["ref"] == ref and on_disk["status"] == "TRAINING_COMPLETED"
    assert on_disk["training_info"]["iterations"] == 4
    assert on_disk["training_info"]["main_status"] == "TRAINING_COMPLETED"
    with pytest.raises(HubError, match="409"):  # the run name is taken on the hub now
        client.new_model(ModelInfo(**{**info.model_dump(), "name": "shapes-run", "focoos_model": "tiny-shapes"}))
    with pytest.raises(HubError, match="not supported here"):
        remote.infer(np.zeros((8, 8, 3), np.uint8))


class _BrokenSplit:
    """A training split whose images cannot be read."""

    def __init__(self, split) -> None:
        self.task, self.classes, self.name, self._len = split.task, split.classes, split.name, len(split)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int):
        raise OSError("disk gone")


def test_failed_training_reports_the_error_and_its_log(hub, tmp_path, shapes_zip):
    client = _alice(hub)
    train = _open_split(Path(client.get_remote_dataset("d-alice").download_data()), DatasetSplitType.TRAIN)
    with pytest.raises(OSError, match="disk gone"):
        _tiny_trainee().train(_args(tmp_path, "broken-run"), _BrokenSplit(train), None, hub=client)
    ref = json.loads((tmp_path / "runs" / "broken-run" / "model_info.json").read_text())["ref"]
    syncs = [c["json"] for c in hub.calls(f"/models/{ref}/sync-local-training")]
    assert [s["status"] for s in syncs] == ["TRAINING_RUNNING", "TRAINING_ERROR"]  # reported once
    assert "OSError: disk gone" in syncs[-1]["training_info"]["failure_reason"]
    uploaded = [c["json"]["file_name"] for c in hub.calls(f"/models/{ref}/generate-upload-url")]
    assert uploaded == ["log.txt", "model_info.json"]  # no weights or metrics were written
    assert client.get_remote_model(ref).model_info.status == ModelStatus.TRAINING_ERROR
    log = (tmp_path / "runs" / "broken-run" / "log.txt").read_text().splitlines()
    assert client.get_remote_model(ref).train_logs() == log


def test_cli_hub_commands_list_and_download(hub, tmp_path, capsys):
    from focoos.cli import main

    login = ["hub", "--api-key", ALICE_KEY, "--host-url", hub.url]
    assert main(login) == 0 and "alice@example.com" in capsys.readouterr().out
    assert main([*login, "models"]) == 0 and "m-alice" in capsys.readouterr().out
    assert main([*login, "datasets", "--include-shared"]) == 0
    listed = capsys.readouterr().out
    assert "d-alice" in listed and "d-bob-shared" in listed and "d-bob-private" not in listed
    assert main([*login, "dataset", "download", "--ref", "d-alice", "--path", str(tmp_path / "dl")]) == 0
    assert list((tmp_path / "dl").glob("*.zip"))
    assert main(["hub", "--api-key", "wrong", "--host-url", hub.url, "models"]) == 2
    assert "HubAuthError" in capsys.readouterr().err
