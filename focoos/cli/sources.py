"""What `focoos predict --source` names: one image, the images of a folder or a glob, a video file or a camera."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from focoos.errors import FocoosError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
CAMERA_FPS = 30.0  # what a camera that does not report its frame rate is written at


@dataclass
class Video:
    """A video file or a camera, read frame by frame as RGB."""

    name: str  # the stem of its result files
    capture: str | int  # what cv2.VideoCapture opens: a path, a URL or a camera number
    max_frames: int | None = None
    total: int | None = None  # frames it will yield, when known (a file's count, or max_frames)
    fps: float = CAMERA_FPS

    def open(self) -> Any:
        import cv2

        capture = cv2.VideoCapture(self.capture)
        if not capture.isOpened():
            what = f"camera {self.capture}: no camera with that number here" if isinstance(self.capture, int) \
                else f"video {self.capture}: the file is missing or not a video OpenCV can read"
            raise FocoosError(f"cannot open {what}")
        return capture

    def probe(self) -> Video:
        """Read the frame count and rate (and prove it opens) before any model work starts."""
        import cv2

        capture = self.open()
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if isinstance(self.capture, str) else 0
        self.fps = float(capture.get(cv2.CAP_PROP_FPS) or 0) or CAMERA_FPS
        capture.release()
        known = [n for n in (count or None, self.max_frames) if n]
        self.total = min(known) if known else None
        return self

    def frames(self) -> Iterator[Any]:
        """RGB frames until the video ends, max_frames, or Ctrl-C (a camera)."""
        import cv2

        capture = self.open()
        try:
            read = 0
            while self.max_frames is None or read < self.max_frames:
                ok, frame = capture.read()
                if not ok:
                    break
                read += 1
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()


@dataclass
class Sources:
    """Images (paths or URLs, with the names their result files take) or one video."""

    items: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    video: Video | None = None
    single_image: bool = False


def _images(paths: list[Path], source: str) -> Sources:
    images = sorted(p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FocoosError(f"--source {source}: no images ({', '.join(IMAGE_SUFFIXES)}) there")
    return Sources(items=[str(p) for p in images], names=[str(p) for p in images])


def iter_sources(source: str, max_frames: int | None = None) -> Sources:
    """Sources for --source: a camera number, a folder, a glob pattern, a video file, else one image (path or URL)."""
    text = source.strip()
    if text.isdigit():
        return Sources(video=Video(f"camera{text}", int(text), max_frames).probe())
    is_url = text.startswith(("http://", "https://"))
    path = Path(text).expanduser()
    if not is_url and path.is_dir():
        return _images(list(path.iterdir()), source)
    if not is_url and any(char in text for char in "*?["):
        return _images([Path(p) for p in glob.glob(str(path), recursive=True)], source)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return Sources(video=Video(path.stem, text if is_url else str(path), max_frames).probe())
    return Sources(items=[text], names=[text], single_image=True)
