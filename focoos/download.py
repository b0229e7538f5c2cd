"""Write a streamed download into place only when it is complete: never a half file in a cache.

The body goes to `.<name>.<pid>.<random>.part` beside the target, removed when the download fails or
is interrupted. A process killed outright (SIGKILL, power loss) cannot remove its file; the next
download into the same folder removes every `.part` whose process is gone.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from tqdm.auto import tqdm

PART_SUFFIX = ".part"


class TruncatedDownloadError(OSError):
    """The body ended before its Content-Length: the connection dropped mid-download."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def remove_stale_parts(folder: Path) -> list[Path]:
    """Delete the `.part` files in `folder` whose downloading process no longer exists; returns them."""
    removed = []
    for part in folder.glob(f".*{PART_SUFFIX}"):
        fields = part.name[: -len(PART_SUFFIX)].rsplit(".", 2)  # [".<name>", "<pid>", "<random>"]
        if len(fields) == 3 and fields[1].isdigit() and not _alive(int(fields[1])):
            part.unlink(missing_ok=True)
            removed.append(part)
    return removed


def write_complete(
    chunks: Iterable[bytes],
    target: Path,
    expected_bytes: int | None,
    verify: Callable[[Path], None] | None = None,
) -> int:
    """Stream `chunks` to a temporary file beside `target`, check the byte count (and `verify`), then rename.

    Returns the bytes written; on any error the temporary file is removed and `target` is untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(target.parent)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.{os.getpid()}.", suffix=PART_SUFFIX)
    tmp = Path(tmp_name)
    written = 0
    try:
        with os.fdopen(fd, "wb") as out, tqdm(total=expected_bytes, unit="B", unit_scale=True,
                                               desc=target.name) as bar:
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
        if expected_bytes is not None and written != expected_bytes:
            raise TruncatedDownloadError(f"the download ended after {written} of {expected_bytes} bytes")
        if verify is not None:
            verify(tmp)
        tmp.replace(target)
        return written
    finally:
        tmp.unlink(missing_ok=True)
