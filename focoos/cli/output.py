"""What commands print and write: a detections table, annotated images, Focoos' result files."""

from __future__ import annotations

import json
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


def save_predictions(det: Any, source: str, output_dir: Path, save: bool, save_json: bool, save_masks: bool) -> None:
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
    print(f"results: {output_dir}")
