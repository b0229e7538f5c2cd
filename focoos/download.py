"""Write a streamed download into place only when it is complete: never a half file in a cache."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from tqdm.auto import tqdm


class TruncatedDownloadError(OSError):
    """The body ended before its Content-Length: the connection dropped mid-download."""


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
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
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
