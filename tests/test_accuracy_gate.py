"""The build-time accuracy gate on a real tritonserver: a build that answers as eager fp32 is published with its
check beside it (`focoos build --check-accuracy`); one that loses accuracy (an answer cap too small for the
scenes) is refused with both figures and leaves the repository as it was. Int8 on this detector is refused the
same way (62.5 against 74.7 AP): benchmarks/accuracy_per_runtime.py measures what each precision loses."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from focoos.builder import RepositoryBuilder
from focoos.builder.accuracy import AccuracyGateError
from focoos.builder.configs import ACCURACY_FILE

from focoos import ModelManager

NAME = "digits"


@pytest.fixture(scope="module")
def detector():
    return ModelManager.get("fai-detr-n-digits", device="cpu")


@pytest.fixture(scope="module")
def published(digits_dataset, tmp_path_factory):
    """A repository holding one build that passed the gate, built by the CLI; what it printed."""
    from focoos.cli import main

    root = tmp_path_factory.mktemp("gated")
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(["build", "--model", "fai-detr-n-digits", "--target", "embedded", "--repository", str(root),
                     "--name", NAME, "--check-accuracy", str(digits_dataset)])
    assert code == 0, out.getvalue()
    return root, RepositoryBuilder(root).get(NAME), out.getvalue()


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if "__pycache__" not in p.parts)


def test_a_build_answering_as_eager_is_published_with_its_check(published, digits_val):
    root, served, printed = published
    check = json.loads((root / NAME / str(served.versions[-1]) / ACCURACY_FILE).read_text())
    assert check["metric"] == "bbox/AP" and check["images"] == len(digits_val) and check["passed"]
    assert check["eager"] > 30.0, "the bundled detector finds digits: a score near 0 would prove nothing"
    assert check["served"] == pytest.approx(check["eager"], abs=0.5)
    assert served.accuracy == check
    assert f"bbox/AP: served {check['served']:.2f}, eager fp32 {check['eager']:.2f} on 6 images" in printed
    assert not [p for p in root.iterdir() if p.name.startswith(".")], "no staging folder is left behind"


def test_a_build_losing_accuracy_is_refused_and_the_repository_is_unchanged(published, detector, digits_val):
    root, served, _ = published
    before = _tree(root)
    with pytest.raises(AccuracyGateError, match=r"not published: accuracy check failed: bbox/AP served .* eager "
                                                r"fp32 .* tolerance 1\.00"):
        RepositoryBuilder(root).add(detector, name=NAME, target="embedded", top_k=1, check_accuracy=digits_val)
    assert _tree(root) == before
    assert RepositoryBuilder(root).get(NAME).versions == served.versions


def test_tolerance_is_checked_before_the_build(detector, digits_val, tmp_path):
    with pytest.raises(AccuracyGateError, match="tolerance must be >= 0"):
        RepositoryBuilder(tmp_path).add(detector, name=NAME, target="embedded", check_accuracy=digits_val,
                                        accuracy_tolerance=-1)
    assert not (tmp_path / NAME).exists()


def test_a_target_the_local_server_cannot_load_is_refused(detector, digits_val, tmp_path):
    with pytest.raises(AccuracyGateError, match="cannot load it: .*onnxruntime"):
        RepositoryBuilder(tmp_path).add(detector, name=NAME, target="cpu", check_accuracy=digits_val)
    assert not (tmp_path / NAME).exists()


def test_cli_tolerance_needs_a_dataset(tmp_path, capsys):
    from focoos.cli import main

    code = main(["build", "--model", "fai-detr-n-digits", "--target", "embedded", "--repository", str(tmp_path),
                 "--accuracy-tolerance", "2"])
    assert code == 2 and "--accuracy-tolerance needs --check-accuracy" in capsys.readouterr().err
