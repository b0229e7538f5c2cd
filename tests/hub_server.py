"""A loopback stand-in for the Focoos hub's REST API, serving a folder; run it as a separate process.

    python tests/hub_server.py --root DIR --port-file DIR/port

The folder (write it with the `add_*` helpers below, before or while the server runs):
    users.json                    [{"ref", "api_key", "email", ...}]
    models/<ref>/model.json       the hub's model info (RemoteModelInfo JSON + owner_ref)
    models/<ref>/model_final.pth  weights; uploads of a model's artifacts land in this folder too
    datasets/<ref>/dataset.json   DatasetPreview JSON + owner_ref, shared, file
    knobs.json                    {"delay_s": s, "delay_path": "/v0/user/", "drop_after_bytes": n}: read per request
    calls.jsonl                   written by the server: every request after the key check, with its JSON body

Behaviour follows the hub: the X-API-Key header is checked on /v0/ (401 missing or unknown, 403 a
model or dataset of another user, 404 an unknown ref, 409 a taken model name); downloads and uploads
go through presigned /files/ and /upload/ URLs that carry a signature instead of the key.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import threading
import time
import zipfile
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

QUOTAS = {
    "total_inferences": 0, "max_inferences": 1000, "used_storage_gb": 0.0, "max_storage_gb": 10.0,
    "active_training_jobs": [], "max_active_training_jobs": 1, "used_mlg4dnxlarge_training_jobs_hours": 0.0,
    "max_mlg4dnxlarge_training_jobs_hours": 10.0,
}


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


# -- folder helpers (tests write the hub's state with these)
def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def add_user(root: Path, ref: str, api_key: str, email: str) -> None:
    path = Path(root) / "users.json"
    users = json.loads(path.read_text()) if path.is_file() else []
    users.append({"ref": ref, "api_key": api_key, "email": email, "company": "Test Co", "created_at": now(),
                  "updated_at": now(), "quotas": QUOTAS})
    _write_json(path, users)


def add_model(root: Path, ref: str, owner_ref: str, info: dict[str, Any], weights: Path | None = None,
              updated_at: str | None = None) -> None:
    """A trained hub model from a local ModelInfo dict (name, model_family, task, classes, im_size, config)."""
    record = {
        "ref": ref, "name": info["name"], "description": info.get("description"), "is_managed": False,
        "owner_ref": owner_ref, "focoos_model": info.get("focoos_model") or info["name"], "config": info["config"],
        "task": info["task"], "created_at": now(), "updated_at": updated_at or now(), "status": "TRAINING_COMPLETED",
        "model_family": info["model_family"], "classes": info["classes"], "im_size": info["im_size"],
    }
    _write_json(Path(root) / "models" / ref / "model.json", record)
    if weights is not None:
        (Path(root) / "models" / ref / "model_final.pth").write_bytes(Path(weights).read_bytes())


def add_dataset(root: Path, ref: str, owner_ref: str, name: str, task: str, layout: str, zip_path: Path,
                shared: bool = False) -> None:
    folder = Path(root) / "datasets" / ref
    folder.mkdir(parents=True, exist_ok=True)
    (folder / zip_path.name).write_bytes(zip_path.read_bytes())
    record = {"ref": ref, "name": name, "task": task, "layout": layout, "description": None,
              "spec": _zip_spec(folder / zip_path.name), "owner_ref": owner_ref, "shared": shared,
              "file": zip_path.name}
    _write_json(folder / "dataset.json", record)


def set_knobs(root: Path, **knobs: Any) -> None:
    _write_json(Path(root) / "knobs.json", knobs)


def read_calls(root: Path) -> list[dict[str, Any]]:
    path = Path(root) / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _zip_spec(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.lower().endswith((".jpg", ".jpeg", ".png"))]
    def count(split: str) -> int:
        return sum(f"{split}/" in f"/{n}" for n in names)
    return {"train_length": count("train"), "valid_length": count("valid"),
            "size_mb": round(path.stat().st_size / 2**20, 4)}


# -- the server
class HubState:
    """The folder, a lock for writes, and the secret that signs presigned URLs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.Lock()
        self.secret = secrets.token_bytes(16)

    def read(self, relative: str, default: Any = None) -> Any:
        path = self.root / relative
        return json.loads(path.read_text()) if path.is_file() else default

    def write(self, relative: str, data: Any) -> None:
        with self.lock:
            _write_json(self.root / relative, data)

    def record(self, call: dict[str, Any]) -> None:
        with self.lock, (self.root / "calls.jsonl").open("a") as fh:
            fh.write(json.dumps(call) + "\n")

    def sign(self, path: str) -> str:
        return hmac.new(self.secret, path.encode(), hashlib.sha256).hexdigest()[:32]


class HubError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Form parts by name: (file name or None, content)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise HubError(400, "not a multipart body")
    parts = {}
    for chunk in body.split(b"--" + match.group(1).encode())[1:-1]:
        head, _, content = chunk[2:].partition(b"\r\n\r\n")
        disposition = head.decode(errors="replace")
        name = re.search(r'name="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        if name:
            parts[name.group(1)] = (filename.group(1) if filename else None, content[:-2])
    return parts


class Handler(BaseHTTPRequestHandler):
    state: HubState
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    # -- plumbing
    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        knobs = self.state.read("knobs.json", {})
        if knobs.get("delay_s") and url.path.startswith(knobs.get("delay_path", "/")):
            time.sleep(float(knobs["delay_s"]))
        try:
            if url.path.startswith("/files/"):
                return self._serve_file(url.path, knobs)
            if url.path.startswith("/upload/"):
                return self._receive_upload()
            if not url.path.startswith("/v0/"):
                raise HubError(404, f"no route {url.path}")
            user = self._user()
            body = json.loads(self.body) if self.body else None
            self.state.record({"method": method, "path": url.path, "query": self.query, "json": body,
                               "headers": {"user_agent": self.headers.get("user_agent")}})
            status, answer = self._route(method, [p for p in url.path[len("/v0/"):].split("/") if p], user, body)
            self._send_json(status, answer)
        except HubError as exc:
            self._send_json(exc.status, {"detail": exc.detail})
        except Exception as exc:  # noqa: BLE001 - a bug here must answer 500, not hang the client
            self._send_json(500, {"detail": f"{type(exc).__name__}: {exc}"})

    def _send_json(self, status: int, data: Any) -> None:
        payload = b"" if status == 204 else json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _user(self) -> dict[str, Any]:
        key = self.headers.get("X-API-Key")
        if not key:
            raise HubError(401, "missing X-API-Key header")
        for user in self.state.read("users.json", []):
            if hmac.compare_digest(user["api_key"], key):
                return user
        raise HubError(401, "invalid API key")

    def _presigned(self, path: str) -> str:
        return f"http://{self.headers['Host']}{path}?signature={self.state.sign(path)}"

    # -- presigned transfers
    def _serve_file(self, path: str, knobs: dict[str, Any]) -> None:
        if not hmac.compare_digest(self.query.get("signature", ""), self.state.sign(path)):
            raise HubError(403, "bad or missing signature")
        file = self.state.root / path[len("/files/"):]
        if not file.is_file():
            raise HubError(404, f"no file {path}")
        data = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        drop_after = knobs.get("drop_after_bytes")
        if drop_after is not None and drop_after < len(data):
            self.wfile.write(data[:drop_after])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-body
            self.close_connection = True
            return
        self.wfile.write(data)

    def _receive_upload(self) -> None:
        parts = _multipart(self.headers.get("Content-Type", ""), self.body)
        key = parts.get("key", (None, b""))[1].decode()
        if "file" not in parts or not key or ".." in key.split("/"):
            raise HubError(400, "an upload needs the key field and a file part")
        if not hmac.compare_digest(parts.get("signature", (None, b""))[1].decode(), self.state.sign(key)):
            raise HubError(403, "bad upload signature")
        file_name, content = parts["file"]
        limit = int(parts.get("max_size_bytes", (None, b"0"))[1])
        if len(content) > limit:
            raise HubError(400, f"EntityTooLarge: {len(content)} bytes over the declared {limit}")
        target = self.state.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        self.state.record({"method": "POST", "path": "/upload/", "key": key, "file_name": file_name,
                           "size": len(content), "fields": sorted(parts)})
        self._send_json(204, None)

    # -- the REST API
    def _owned(self, kind: str, ref: str, user: dict[str, Any], visible_to_all: str) -> dict[str, Any]:
        """models/<ref>/model.json or datasets/<ref>/dataset.json, if `user` may see it (404 / 403 otherwise)."""
        entity = kind[:-1]
        record = self.state.read(f"{kind}/{ref}/{entity}.json")
        if record is None:
            raise HubError(404, f"{entity} {ref} not found")
        if record["owner_ref"] != user["ref"] and not record.get(visible_to_all):
            raise HubError(403, f"{entity} {ref} belongs to another user")
        return record

    def _model(self, ref: str, user: dict[str, Any]) -> dict[str, Any]:
        return self._owned("models", ref, user, visible_to_all="is_managed")

    def _dataset(self, ref: str, user: dict[str, Any]) -> dict[str, Any]:
        return self._owned("datasets", ref, user, visible_to_all="shared")

    def _all(self, kind: str, file: str) -> list[dict[str, Any]]:
        folder = self.state.root / kind
        return [json.loads(p.read_text()) for p in sorted(folder.glob(f"*/{file}"))] if folder.is_dir() else []

    def _upload_url(self, prefix: str, body: dict[str, Any]) -> dict[str, Any]:
        if not body or not body.get("file_name") or not isinstance(body.get("file_size_bytes"), int):
            raise HubError(422, "file_name and file_size_bytes (int) are required")
        key = f"{prefix}/{Path(body['file_name']).name}"
        return {"url": f"http://{self.headers['Host']}/upload/",
                "fields": {"key": key, "signature": self.state.sign(key),
                           "max_size_bytes": str(body["file_size_bytes"])}}

    def _route(self, method: str, parts: list[str], user: dict[str, Any], body: Any) -> tuple[int, Any]:
        route = (method, *parts)
        if route == ("GET", "user"):
            return 200, {"email": user["email"], "created_at": user["created_at"], "updated_at": user["updated_at"],
                         "company": user.get("company"), "api_key": {"key": user["api_key"]},
                         "quotas": user["quotas"]}
        if parts[:1] == ["models"]:
            return self._models(method, parts[1:], user, body)
        if parts[:1] == ["datasets"]:
            return self._datasets(method, parts[1:], user, body)
        raise HubError(404, f"no route {method} /{'/'.join(parts)}")

    def _models(self, method: str, parts: list[str], user: dict[str, Any], body: Any) -> tuple[int, Any]:
        if method == "GET" and not parts:
            keys = ("ref", "name", "task", "description", "status", "focoos_model")
            return 200, [{k: m.get(k) for k in keys} for m in self._all("models", "model.json")
                         if m["owner_ref"] == user["ref"]]
        if method == "POST" and parts == ["local-model"]:
            return self._new_model(user, body or {})
        if not parts:
            raise HubError(405, "method not allowed")
        ref, action = parts[0], "/".join(parts[1:])
        model = self._model(ref, user)
        if method == "GET" and action == "":
            return 200, model
        if method == "GET" and action == "download":
            weights = self.state.root / "models" / ref / "model_final.pth"
            if self.query.get("format") != "pth" or not weights.is_file():
                raise HubError(404, f"model {ref} has no {self.query.get('format')} weights")
            return 200, {"download_uri": self._presigned(f"/files/models/{ref}/model_final.pth")}
        if method == "PATCH" and action == "sync-local-training":
            if not isinstance(body, dict) or "status" not in body:
                raise HubError(422, "status is required")
            model.update(status=body["status"], training_info=body.get("training_info"), updated_at=now())
            self.state.write(f"models/{ref}/model.json", model)
            self.state.write(f"models/{ref}/hub_metrics.json", body.get("metrics") or {})
            return 200, {"ref": ref, "status": body["status"]}
        if method == "POST" and action == "generate-upload-url":
            return 200, self._upload_url(f"models/{ref}", body)
        if method == "GET" and action == "train/status":
            return 200, model.get("training_info") or {}
        if method == "GET" and action == "train/logs":
            log = self.state.root / "models" / ref / "log.txt"
            return 200, log.read_text().splitlines() if log.is_file() else []
        if method == "GET" and action == "metrics":
            return 200, self.state.read(f"models/{ref}/hub_metrics.json", {})
        raise HubError(404, f"no route {method} models/{ref}/{action}")

    def _new_model(self, user: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        missing = [k for k in ("name", "focoos_model", "task") if not body.get(k)]
        if missing:
            raise HubError(422, f"missing fields: {', '.join(missing)}")
        if any(m["name"] == body["name"] and m["owner_ref"] == user["ref"] for m in self._all("models", "model.json")):
            raise HubError(409, f"a model named {body['name']} already exists")
        ref = secrets.token_hex(8)
        model = {"ref": ref, "name": body["name"], "description": body.get("description"), "is_managed": False,
                 "owner_ref": user["ref"], "focoos_model": body["focoos_model"], "config": body.get("config"),
                 "task": body["task"], "created_at": now(), "updated_at": now(), "status": "CREATED",
                 "classes": body.get("classes"), "im_size": body.get("im_size"),
                 "hyperparameters": body.get("train_args"), "focoos_version": body.get("focoos_version")}
        self.state.write(f"models/{ref}/model.json", model)
        return 201, model

    def _datasets(self, method: str, parts: list[str], user: dict[str, Any], body: Any) -> tuple[int, Any]:
        keys = ("ref", "name", "task", "layout", "description", "spec")
        if method == "GET" and parts in ([], ["shared"]):
            shared = parts == ["shared"]

            def listed(d: dict[str, Any]) -> bool:
                mine = d["owner_ref"] == user["ref"]
                return (not mine and bool(d.get("shared"))) if shared else mine

            return 200, [{k: d.get(k) for k in keys} for d in self._all("datasets", "dataset.json") if listed(d)]
        if not parts:
            raise HubError(405, "method not allowed")
        ref, action = parts[0], "/".join(parts[1:])
        dataset = self._dataset(ref, user)
        if method == "GET" and action == "":
            return 200, {k: dataset.get(k) for k in keys}
        if method == "GET" and action == "download":
            if not dataset.get("file"):
                raise HubError(404, f"dataset {ref} has no data yet")
            return 200, {"download_uri": self._presigned(f"/files/datasets/{ref}/{dataset['file']}")}
        if dataset["owner_ref"] != user["ref"]:
            raise HubError(403, f"dataset {ref} belongs to another user")
        if method == "POST" and action == "generate-upload-url":
            dataset["pending_file"] = Path(body.get("file_name", "")).name if body else None
            self.state.write(f"datasets/{ref}/dataset.json", dataset)
            return 200, self._upload_url(f"datasets/{ref}", body)
        if method == "POST" and action == "complete-upload":
            pending = dataset.pop("pending_file", None)
            if not pending or not (self.state.root / "datasets" / ref / pending).is_file():
                raise HubError(409, "no uploaded file to validate")
            dataset.update(file=pending, spec=_zip_spec(self.state.root / "datasets" / ref / pending))
            self.state.write(f"datasets/{ref}/dataset.json", dataset)
            return 204, None
        raise HubError(404, f"no route {method} datasets/{ref}/{action}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, help="written with the bound port once the server listens")
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    Handler.state = HubState(args.root)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.port_file:
        tmp = args.port_file.with_name(f".{args.port_file.name}.tmp")
        tmp.write_text(str(server.server_address[1]))
        os.replace(tmp, args.port_file)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
