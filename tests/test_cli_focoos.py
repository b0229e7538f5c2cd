"""Focoos' CLI commands and option names: predict, export, val, settings, checks, version; the CLI's shape."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from focoos import FocoosDetections
from focoos.cli import build_parser, main
from focoos.cli.commands import COMMANDS
from focoos.cli.options import im_size as _im_size
from focoos.samples import digit_canvases
from tests.test_cli_and_quickstart import FOCOOS_BIN, _run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def canvas(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("canvas") / "digits.jpg"
    image = next(iter(digit_canvases(1).values()))
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def test_im_size_accepts_focoos_forms():
    assert _im_size("640") == 640
    assert _im_size("480,640") == (480, 640)
    assert _im_size("480x640") == (480, 640)
    with pytest.raises(Exception, match="invalid image size"):
        _im_size("big")


def _subcommands(parser) -> dict:
    return next(a for a in parser._actions if a.dest == "command").choices


def test_every_command_is_one_module_with_a_description_and_builds_its_parser():
    parsers = _subcommands(build_parser())
    assert list(parsers) == [module.NAME for module in COMMANDS]
    focoos_modules = {"predict", "train", "val", "export", "benchmark", "hub"}  # focoos.cli.commands' names
    assert {m.__name__.rsplit(".", 1)[-1] for m in COMMANDS} >= focoos_modules
    for name, parser in parsers.items():
        assert parser.description and len(parser.description.split()) >= 8, name
        assert parser.format_help()  # every option's help expands, library defaults included


def test_only_the_chosen_command_gets_its_options():
    parsers = _subcommands(build_parser("models"))
    assert "--json" in parsers["models"]._option_string_actions
    assert "--source" not in parsers["predict"]._option_string_actions


def test_options_not_given_are_not_passed_and_help_shows_the_library_default(capsys):
    from focoos.infer.pipeline import LocalModel

    args = build_parser("predict").parse_args(["predict", "--source", "x.jpg"])
    assert args.conf is None and args.device is None
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "--help"])
    assert exit_.value.code == 0
    threshold = inspect.signature(LocalModel.infer).parameters["threshold"].default
    assert f"(default: {threshold})" in " ".join(capsys.readouterr().out.split())
    args = build_parser("swap").parse_args(["swap", "--url", "h:1", "--name", "n", "--rollback"])
    assert (args.lock_timeout, args.keep, args.max_batch_size, args.repository) == (None, None, None, None)


def test_bench_goes_through_the_same_dispatch(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--help"])
    assert exit_.value.code == 0 and "--concurrency" in capsys.readouterr().out


def test_focoos_programmatic_predict_returns_the_detections(tmp_path, canvas):
    from focoos.cli.commands import export_command, predict_command
    from focoos.errors import FocoosError

    det = predict_command(model_name="fai-detr-n-digits", source=str(canvas), conf=0.3, save=False,
                          output_dir=tmp_path, save_masks=False)
    assert isinstance(det, FocoosDetections) and det.detections
    assert FocoosDetections.model_validate_json((tmp_path / "digits_detections.json").read_text()) is not None
    assert not (tmp_path / "digits_annotated.jpg").exists()
    with pytest.raises(FocoosError, match="invalid choice"):  # checked by the option, before any model loads
        export_command(model_name="fai-detr-n-digits", format="tflite")


@pytest.mark.slow
def test_predict_writes_focoos_result_files(tmp_path, canvas):
    args = [str(FOCOOS_BIN), "predict", "--model", "fai-mf-n-digits-ins", "--source", str(canvas), "--conf", "0.3",
            "--output-dir", "out"]
    result = _run(args, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "out"
    assert cv2.imread(str(out / "digits_annotated.jpg")).shape == (256, 256, 3)
    det = FocoosDetections.model_validate_json((out / "digits_detections.json").read_text())
    assert det.detections and all(d.mask for d in det.detections)
    masks = sorted((out / "digits_masks").glob("mask_*.png"))
    assert len(masks) == len(det.detections)
    assert cv2.imread(str(masks[0]), cv2.IMREAD_GRAYSCALE).max() == 255
    assert "latency s" in result.stdout

    quiet = _run([*args[:-2], "--output-dir", "none", "--no-save", "--no-save-json", "--no-save-masks"], tmp_path)
    assert quiet.returncode == 0 and not (tmp_path / "none").exists()


def test_export_by_format_reuses_the_export_unless_overwrite(tmp_path):
    export = [str(FOCOOS_BIN), "export", "--model", "fai-cls-n-digits", "--format", "torchscript", "--output-dir", "e"]
    first = _run(export, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    model_file = tmp_path / "e" / "model.pt"
    stamp = model_file.stat().st_mtime_ns
    assert _run(export, tmp_path).returncode == 0
    assert model_file.stat().st_mtime_ns == stamp  # reused
    assert _run([*export, "--overwrite"], tmp_path).returncode == 0
    assert model_file.stat().st_mtime_ns != stamp


@pytest.mark.slow
def test_val_prints_the_training_evaluator_metrics(tmp_path):
    digits = tmp_path / "digits"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "prepare_digits_dataset.py"), "--out", str(digits),
                    "--train-images", "4", "--val-images", "4", "--size", "128", "--seed", "0"],
                   check=True, capture_output=True)
    args = [str(FOCOOS_BIN), "val", "--model", "fai-detr-n-digits", "--dataset", "digits", "--datasets-dir",
            str(tmp_path), "--im-size", "128", "--run-name", "val-run", "--output-dir", "runs"]
    result = _run(args, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("bbox/AP ")]
    assert len(rows) == 1 and 0.0 <= float(rows[0][1]) <= 100.0  # one table, printed once
    assert "METRIC" in result.stdout and "evaluating fai-detr-n-digits" in result.stderr  # a progress bar
    metrics = json.loads((tmp_path / "runs" / "val-run_eval" / "metrics.json").read_text())[0]
    assert metrics["bbox/AP"] == pytest.approx(float(rows[0][1]), abs=1e-4)


def test_settings_checks_and_version(tmp_path):
    settings = _run([str(FOCOOS_BIN), "settings"], tmp_path)
    assert settings.returncode == 0
    import os

    assert f"FOCOOS_MODELS_DIR={os.environ['FOCOOS_MODELS_DIR']}" in settings.stdout
    checks = _run([str(FOCOOS_BIN), "checks"], tmp_path)
    assert checks.returncode == 0 and "torch: " in checks.stdout and "tritonserver: " in checks.stdout
    from focoos import __version__

    assert _run([str(FOCOOS_BIN), "version"], tmp_path).stdout.strip() == f"focoos version: {__version__}"


def test_unknown_model_is_a_clear_error(tmp_path):
    result = _run([str(FOCOOS_BIN), "export", "--model", "no-such-model"], tmp_path)
    assert result.returncode == 2 and "ModelNotFoundError" in result.stderr and "no-such-model" in result.stderr
