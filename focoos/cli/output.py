"""What commands print and write: a detections table, annotated images, Focoos' result files."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def print_detections(det: Any) -> None:
    """One line per detection (label, confidence, box, mask pixels), then the latency."""
    with_masks = any(d.mask for d in det.detections)
    print(f"{'LABEL':<20} {'CONF':>6}  BBOX (xyxy px)" + ("                 MASK PIXELS" if with_masks else ""))
    for d in det.detections:
        line = f"{d.label or d.cls_id:<20} {d.conf:>6.3f}  {d.bbox}"
        if d.mask:
            from focoos.processing import decode_mask

            line = f"{line:<60} {int(decode_mask(d.mask).sum())}"
        print(line)
    if not det.detections:
        print("(no detections over the threshold)")
    if det.latency:
        print(f"latency s: {det.latency.model_dump(exclude_none=True)}")


def write_rgb(path: Path, image: Any) -> None:
    """Write RGB pixels (OpenCV writes BGR), creating the folder."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def write_gray(path: Path, mask: Any) -> None:
    """A boolean mask as a black and white PNG."""
    import cv2

    cv2.imwrite(str(path), mask.astype("uint8") * 255)


def save_predictions(det: Any, source: str, output_dir: Path, save: bool, save_json: bool, save_masks: bool,
                     quiet: bool = False) -> None:
    """Focoos' files: <stem>_annotated<ext>, <stem>_detections.json and <stem>_masks/mask_<n>.png."""
    from focoos.processing import decode_mask

    stem, suffix = Path(source).stem or "image", Path(source).suffix or ".jpg"
    output_dir.mkdir(parents=True, exist_ok=True)
    if save and det.image is not None:
        write_rgb(output_dir / f"{stem}_annotated{suffix}", det.image)
    if save_json:
        (output_dir / f"{stem}_detections.json").write_text(json.dumps(det.model_dump(mode="json"), indent=2))
    masks = [d.mask for d in det.detections if d.mask]
    if save_masks and masks:
        masks_dir = output_dir / f"{stem}_masks"
        masks_dir.mkdir(exist_ok=True)
        for i, mask in enumerate(masks, start=1):
            write_gray(masks_dir / f"mask_{i}.png", decode_mask(mask))
    if not quiet:
        print(f"results: {output_dir}")


@dataclass
class VideoResults:
    frames: int = 0
    detections: int = 0
    files: list[Path] = field(default_factory=list)


def save_video_predictions(model: Any, frames: Iterable[Any], video: Any, output_dir: Path, save: bool,
                           save_json: bool, options: dict[str, Any]) -> VideoResults:
    """Run the model on every frame: <name>_annotated.mp4 (with `save`) and <name>_detections.json, one entry per
    frame (with `save_json`). Ctrl-C (a camera) stops the stream and keeps what was written."""
    import contextlib

    import cv2

    results, writer, per_frame = VideoResults(), None, []
    output_dir.mkdir(parents=True, exist_ok=True)
    video_path, json_path = output_dir / f"{video.name}_annotated.mp4", output_dir / f"{video.name}_detections.json"
    try:
        with contextlib.suppress(KeyboardInterrupt):
            for index, frame in enumerate(frames):
                det = model.infer(frame, annotate=save, **options)
                results.frames += 1
                results.detections += len(det.detections)
                if save_json:
                    per_frame.append({"frame": index,
                                      "detections": [d.model_dump(mode="json") for d in det.detections]})
                if save and det.image is not None:
                    if writer is None:
                        height, width = det.image.shape[:2]
                        writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"mp4v"), video.fps,
                                                 (width, height))
                    writer.write(cv2.cvtColor(det.image, cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()
            results.files.append(video_path)
        if save_json and results.frames:
            json_path.write_text(json.dumps(per_frame))
            results.files.append(json_path)
    return results
