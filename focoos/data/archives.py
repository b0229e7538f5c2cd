"""Datasets shipped as archives (a hub download, a zip from Roboflow): extract once, then read the folder.

`foo.zip` (in the datasets folder or anywhere else) becomes the folder `foo` in the datasets
folder, as in Focoos. A marker file records which
archive (size and modification time) the folder came from, so the next run reads the folder
without extracting again, and a changed archive is extracted afresh. Extraction happens in a
temporary folder that is renamed into place, so an interrupted run never leaves half a dataset.
A zip whose content sits in one top folder (`foo/train/...`) is read from that folder, as Focoos does.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from focoos.data.errors import DatasetError

logger = logging.getLogger("focoos.data")

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
MARKER = ".focoos_extracted.json"
# Folders archivers add that are not part of a dataset.
JUNK_NAMES = ("__MACOSX",)
# Checked before extracting, from the sizes the archive declares (zipfile never writes more than a member
# declares). Images barely compress and annotation JSON about 10x, while a zip bomb reaches 1000x: the ratio
# applies from RATIO_FLOOR_BYTES up, so small archives of flat test images stay fine.
MAX_EXTRACTED_BYTES = 64 * 2**30
MAX_COMPRESSION_RATIO = 100
RATIO_FLOOR_BYTES = 64 * 2**20


def archive_suffix(path: str | Path) -> str | None:
    """The archive suffix of a file name (".zip", ".tar.gz", ...), or None for a folder name."""
    name = str(path).lower()
    return next((suffix for suffix in ARCHIVE_SUFFIXES if name.endswith(suffix)), None)


def archives_of(folder: Path) -> list[Path]:
    """The archive names a dataset folder may come from: foo -> foo.zip, foo.tar.gz, ..."""
    return [folder.with_name(folder.name + suffix) for suffix in ARCHIVE_SUFFIXES]


def _identity(archive: Path) -> dict[str, object]:
    stat = archive.stat()
    return {"archive": archive.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _check_member(name: str, archive: Path) -> None:
    """Refuse members that would land outside the target folder (absolute paths, '..')."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise DatasetError(f"archive {archive} holds an unsafe path {name!r}: refusing to extract it")


def _check_sizes(archive: Path, sizes: list[int]) -> None:
    """Refuse an archive that would extract to more than MAX_EXTRACTED_BYTES or inflate beyond the ratio."""
    total = sum(sizes)
    ratio = total / max(archive.stat().st_size, 1)
    if total > MAX_EXTRACTED_BYTES or (total > RATIO_FLOOR_BYTES and ratio > MAX_COMPRESSION_RATIO):
        raise DatasetError(
            f"archive {archive} would extract to {total / 2**20:.0f} MiB ({ratio:.0f}x its size): refusing it "
            f"(limits: {MAX_EXTRACTED_BYTES // 2**30} GiB, {MAX_COMPRESSION_RATIO}x above "
            f"{RATIO_FLOOR_BYTES // 2**20} MiB); extract it yourself and open the folder if you trust it"
        )


def _extract(archive: Path, into: Path) -> None:
    suffix = archive_suffix(archive)
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(archive) as zipped:
                for name in zipped.namelist():
                    _check_member(name, archive)
                _check_sizes(archive, [info.file_size for info in zipped.infolist()])
                zipped.extractall(into)
        else:
            with tarfile.open(archive, "r:*") as tarred:
                members = tarred.getmembers()
                for member in members:
                    _check_member(member.name, archive)
                    if not (member.isfile() or member.isdir()):
                        raise DatasetError(f"archive {archive} holds a link or device {member.name!r}: refusing it")
                _check_sizes(archive, [member.size for member in members])
                if hasattr(tarfile, "data_filter"):  # Python >= 3.12: no links out, no special files
                    tarred.extractall(into, members=members, filter="data")
                else:
                    tarred.extractall(into, members=members)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise DatasetError(f"{archive} is not a valid {suffix} archive: {exc}") from exc
    except OSError as exc:
        raise DatasetError(f"cannot extract {archive}: {exc}") from exc


def _content_root(folder: Path, split_names: tuple[str, ...], archive: Path) -> Path:
    """The folder holding the split folders: the extraction folder, or its one top folder."""
    for junk in JUNK_NAMES:
        shutil.rmtree(folder / junk, ignore_errors=True)
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    folders = [p for p in entries if p.is_dir()]
    if not any(p.name in split_names for p in folders) and len(folders) == 1:
        folder, folders = folders[0], [p for p in folders[0].iterdir() if p.is_dir()]
    if not any(p.name in split_names for p in folders):
        found = ", ".join(sorted(p.name for p in entries)) or "nothing"
        raise DatasetError(
            f"archive {archive} holds {found}: expected split folders ({', '.join(split_names)}) "
            "at its root or inside one top folder"
        )
    return folder


def extract_dataset(archive: Path, datasets_dir: Path, split_names: tuple[str, ...]) -> Path:
    """The dataset folder of an archive, extracted into datasets_dir on first use (see the module docstring)."""
    if not archive.is_file():
        raise DatasetError(f"dataset archive not found: {archive}")
    suffix = archive_suffix(archive) or ""
    target = datasets_dir / archive.name[: -len(suffix)]
    datasets_dir.mkdir(parents=True, exist_ok=True)
    identity = _identity(archive)
    marker = target / MARKER
    if target.exists():
        if not marker.is_file():
            raise DatasetError(
                f"{target} already exists and was not extracted from {archive.name}: "
                f"open it by its name ({target.name}) or move it away to extract the archive"
            )
        try:
            recorded = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = None
        if recorded == identity:
            return target
        logger.info("%s changed since it was extracted: extracting it again", archive)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=datasets_dir))
    try:
        _extract(archive, staging)
        root = _content_root(staging, split_names, archive)
        (root / MARKER).write_text(json.dumps(identity), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)  # an earlier extraction of an older archive (it carries the marker)
        try:
            os.replace(root, target)
        except OSError:
            if not (marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == identity):
                raise  # not a concurrent extraction of the same archive
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("extracted %s into %s", archive, target)
    return target


__all__ = ["ARCHIVE_SUFFIXES", "MARKER", "archive_suffix", "archives_of", "extract_dataset"]
