"""Dataset archives are checked before extraction: size, compression ratio and paths (real files on disk)."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from focoos.data import archives
from focoos.data.archives import extract_dataset
from focoos.data.errors import DatasetError

SPLITS = ("train", "valid")


def _zip_of_zeros(path: Path, mebibytes: int) -> Path:
    """A deflated zip holding `mebibytes` of zeros (about 1000x smaller), written chunk by chunk."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zipped, zipped.open("train/zeros.bin", "w") as member:
        for _ in range(mebibytes):
            member.write(bytes(1 << 20))
    return path


def test_zip_bomb_is_refused_before_anything_is_written(tmp_path):
    archive = _zip_of_zeros(tmp_path / "bomb.zip", 128)
    assert archive.stat().st_size < 1 << 20  # under 1 MiB on disk
    datasets = tmp_path / "datasets"
    with pytest.raises(DatasetError, match=r"would extract to 128 MiB \(\d+x its size\)"):
        extract_dataset(archive, datasets, SPLITS)
    assert list(datasets.iterdir()) == []  # no dataset folder, no staging folder


def test_archive_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(archives, "MAX_EXTRACTED_BYTES", 1 << 20)
    archive = tmp_path / "big.tar"
    payload = os.urandom(2 << 20)  # incompressible: only the total size is over
    with tarfile.open(archive, "w") as tarred:
        member = tarfile.TarInfo("train/random.bin")
        member.size = len(payload)
        tarred.addfile(member, io.BytesIO(payload))
    with pytest.raises(DatasetError, match="would extract to 2 MiB"):
        extract_dataset(archive, tmp_path / "datasets", SPLITS)


def test_small_compressible_archive_still_extracts(tmp_path):
    archive = _zip_of_zeros(tmp_path / "flat.zip", 4)  # 1000x, but far under the ratio floor
    folder = extract_dataset(archive, tmp_path / "datasets", SPLITS)
    assert (folder / "train" / "zeros.bin").stat().st_size == 4 << 20


def test_member_outside_the_folder_is_refused(tmp_path):
    archive = tmp_path / "escape.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("train/../../outside.txt", "x")
    with pytest.raises(DatasetError, match="unsafe path"):
        extract_dataset(archive, tmp_path / "datasets", SPLITS)
    assert not (tmp_path / "outside.txt").exists()
