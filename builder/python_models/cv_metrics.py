"""What a served model sees and answers, as Prometheus metrics, and how far that drifts from a reference.

Copied next to the Python-backend steps as `focoos_cv_metrics.py`. The preprocess step observes the decoded
image sizes and the inputs it refuses; the postprocess step observes the detections it returns. Exported on
Triton's metrics port through the python backend's custom metrics, labelled {model, version} (the ensemble's
name and version), with a bounded set of series: fixed buckets, at most the model's classes, a fixed list of
refusal reasons and signals.

Every metric call of the python backend is a round trip to the server process (about 30 us measured), so a
step only queues what it observed (a list append under a lock); a background thread counts the queue into
numpy arrays once per FLUSH_S, vectorised over everything queued, and adds the counts to the server's
metrics: a handful of calls per second whatever the traffic. Triton 2.51 has a native HISTOGRAM kind, but it
takes one value per call; the histograms here are therefore counters in Prometheus' histogram layout
(`<name>_bucket{le=...}` cumulative, `<name>_sum`, `<name>_count`), which `histogram_quantile` reads as usual.

Drift: the build may record reference distributions of the same signals (`reference`); each step then keeps
its last `window_images` images and exports the population-stability index of every signal against the
reference, `focoos_drift_psi{signal=...}` (0: same shares; 0.1: moderate shift; above 0.25: a different
population). Each Python instance keeps its own window (a sample of the traffic); the gauge holds the
latest instance's value.

Imports numpy (and opencv for segmentation masks, which the step already has); pb_utils only inside Triton.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

METRICS_FILE = "focoos_cv_metrics.json"  # in a step's version folder: present means metrics on
FLUSH_S = 1.0
WINDOW_IMAGES = 1000
MIN_WINDOW_IMAGES = 200  # fewer images in the window than this: no drift index yet
PSI_FLOOR = 1e-4  # shares below this count as this, so a bin absent on one side gives a large, finite index
KEYPOINT_VISIBLE = 0.5  # a keypoint counts as visible from this score up (annotate's KEYPOINT_THRESHOLD)

SCORE_EDGES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
# Signal -> upper bucket bounds (`le`); a value v falls in the first bucket whose bound is >= v, as Prometheus'.
HISTOGRAMS: dict[str, tuple[float, ...]] = {
    "detections_per_image": (0, 1, 2, 3, 5, 10, 20, 50, 100, 300),
    "top_score": SCORE_EDGES,  # the best kept score of each image that has a detection
    "kept_score": SCORE_EDGES,  # every kept score
    "input_pixels": (64**2, 128**2, 256**2, 512**2, 1024**2, 2**21, 2**22, 2**23, 2**24, 2**25),  # height x width
    "mask_area_fraction": (0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0),  # mask pixels / image pixels
    "visible_keypoints": (0, 1, 2, 4, 6, 8, 10, 12, 14, 16, 17),  # per person
}
DESCRIPTIONS = {
    "detections_per_image": "Detections returned per image",
    "top_score": "Best returned score of each image with a detection",
    "kept_score": "Score of every returned detection",
    "input_pixels": "Pixels (height x width) of each decoded input image",
    "mask_area_fraction": "Area of each returned mask as a fraction of its image",
    "visible_keypoints": "Keypoints scoring at least 0.5 per returned person",
}
CLASS_SIGNAL = "class"  # drift of the class shares of returned detections
UNKNOWN_CLASS = "_unknown"  # a class id outside the model's list (bounded: one series)
INVALID_REASONS = ("too_large", "no_pixels", "undecodable", "bad_tensor", "bad_option", "bad_network_output",
                   "other")
STAGE_SIGNALS = {"preprocess": ("input_pixels",),
                 "postprocess": ("detections_per_image", "top_score", "kept_score", "mask_area_fraction",
                                 "visible_keypoints")}
TASK_ONLY = {"mask_area_fraction": ("instseg", "semseg"), "visible_keypoints": ("keypoint",)}


def stage_signals(stage: str, task: str) -> tuple[str, ...]:
    """The histogram signals a step exports for a task."""
    return tuple(s for s in STAGE_SIGNALS[stage] if task in TASK_ONLY.get(s, (task,)))


def invalid_reason(message: str) -> str:
    """A bounded label for a refused input, from the InvalidInputError's message."""
    text = message.lower()
    if "exceed" in text:
        return "too_large"
    if "no pixels" in text or "empty" in text and "network output" not in text:
        return "no_pixels"
    if "decode" in text:
        return "undecodable"
    if "threshold" in text or "top_k" in text:
        return "bad_option"
    if "network output" in text:
        return "bad_network_output"
    if "must be" in text or "shape" in text or "raw image" in text or "bytes" in text:
        return "bad_tensor"
    return "other"


def psi(observed: np.ndarray, expected: np.ndarray) -> float:
    """Population-stability index of two count vectors over the same bins: sum (o - e) ln(o / e) over shares."""
    o, e = np.asarray(observed, np.float64), np.asarray(expected, np.float64)
    if o.sum() <= 0 or e.sum() <= 0:
        return math.nan
    o, e = np.maximum(o / o.sum(), PSI_FLOOR), np.maximum(e / e.sum(), PSI_FLOOR)
    return float(np.sum((o - e) * np.log(o / e)))


def bucket_index(edges: Sequence[float], values: np.ndarray) -> np.ndarray:
    """Bucket of each value: the first bound >= value (len(edges): +Inf), compared in float64."""
    return np.searchsorted(np.asarray(edges, np.float64), np.asarray(values, np.float64), side="left")


def mask_area_fractions(masks: Sequence[bytes], image_hw: tuple[int, int]) -> np.ndarray:
    """Pixels of each PNG mask crop (processing/masks.py's form) over the image's pixels."""
    import cv2

    area = float(image_hw[0]) * float(image_hw[1])
    out = np.empty(len(masks), np.float64)
    for i, png in enumerate(masks):
        crop = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
        out[i] = 0.0 if crop is None else cv2.countNonZero(crop) / area
    return out


def image_signals(task: str, results: Sequence[Any], original_hw: Sequence[tuple[int, int]]) -> dict:
    """(values, image index of each value) per postprocess signal, and class ids, for a batch of results."""
    counts = np.fromiter((len(r.scores) for r in results), np.int64, len(results))
    images = np.arange(len(results))
    owner = np.repeat(images, counts)
    scores = (np.concatenate([np.asarray(r.scores, np.float64).reshape(-1) for r in results]) if counts.sum()
              else np.zeros(0))
    kept = counts > 0
    top = np.array([float(np.max(r.scores)) for r in results if len(r.scores)], np.float64)
    signals = {
        "detections_per_image": (counts.astype(np.float64), images),
        "top_score": (top, images[kept]),
        "kept_score": (scores, owner),
        CLASS_SIGNAL: (np.concatenate([np.asarray(r.classes, np.int64).reshape(-1) for r in results])
                       if counts.sum() else np.zeros(0, np.int64), owner),
    }
    if task in TASK_ONLY["mask_area_fraction"]:
        fractions = [mask_area_fractions(r.masks or [], hw) for r, hw in zip(results, original_hw, strict=True)]
        signals["mask_area_fraction"] = (np.concatenate(fractions) if fractions else np.zeros(0), owner)
    if task in TASK_ONLY["visible_keypoints"]:
        visible = [(np.asarray(r.keypoints)[..., 2] >= KEYPOINT_VISIBLE).sum(-1).reshape(-1) if len(r.scores)
                   else np.zeros(0) for r in results]
        signals["visible_keypoints"] = (np.concatenate(visible).astype(np.float64), owner)
    return signals


class SignalCounts:
    """Bucket counts of one signal: not yet exported (`pending`), and per image over the last `window` images."""

    def __init__(self, edges: Sequence[float] | None, bins: int, window: int) -> None:
        self.edges, self.bins = edges, bins
        self.pending = np.zeros(bins, np.int64)
        self.pending_sum = 0.0
        self.ring = np.zeros((window, bins), np.int32)
        self.pos = self.seen = 0

    def add(self, values: np.ndarray, owner: np.ndarray, images: int) -> None:
        if values.size:
            index = bucket_index(self.edges, values) if self.edges is not None else class_bins(values, self.bins - 1)
            rows = np.bincount(owner * self.bins + index, minlength=images * self.bins).reshape(images, self.bins)
            self.pending += rows.sum(0)
            self.pending_sum += float(values.sum())
        else:
            rows = np.zeros((images, self.bins), np.int32)
        window = len(self.ring)
        rows = rows[-window:]
        slots = (self.pos + np.arange(len(rows))) % window
        self.ring[slots] = rows
        self.pos = (self.pos + len(rows)) % window
        self.seen = min(self.seen + images, window)

    def take(self) -> tuple[np.ndarray, float]:
        """The counts and sum not exported yet; they restart from zero."""
        pending, total = self.pending.copy(), self.pending_sum
        self.pending[:] = 0
        self.pending_sum = 0.0
        return pending, total


def class_bins(ids: np.ndarray, num_classes: int) -> np.ndarray:
    """Class ids as bins: ids outside the model's list share the last bin (UNKNOWN_CLASS)."""
    ids = np.asarray(ids, np.int64)
    return np.where((ids >= 0) & (ids < num_classes), ids, num_classes)


def class_labels(classes: Sequence[str]) -> list[str]:
    return [*classes, UNKNOWN_CLASS]


def reference_from_results(task: str, classes: Sequence[str], results: Sequence[Any],
                           original_hw: Sequence[tuple[int, int]]) -> dict:
    """Reference distributions (bucket counts per signal) of a model's results on held-out images, in the
    layout the steps read from METRICS_FILE."""
    reference = {"input_pixels": _counts("input_pixels", np.array([h * w for h, w in original_hw], np.float64))}
    for name, (values, _) in image_signals(task, results, original_hw).items():
        if name == CLASS_SIGNAL:
            ids = class_bins(values, len(classes))
            reference[name] = {"edges": None, "counts": np.bincount(ids, minlength=len(classes) + 1).tolist()}
        else:
            reference[name] = _counts(name, values)
    reference["images"] = len(results)
    return reference


def _counts(name: str, values: np.ndarray) -> dict:
    edges = HISTOGRAMS[name]
    return {"edges": list(edges),
            "counts": np.bincount(bucket_index(edges, values), minlength=len(edges) + 1).tolist()}


def metrics_settings(model: str, task: str, classes: Sequence[str], reference: dict | None = None) -> dict:
    """The content of METRICS_FILE that the builder writes next to both Python steps."""
    return {"model": model, "task": task, "classes": list(classes), "window_images": WINDOW_IMAGES,
            "min_window_images": MIN_WINDOW_IMAGES, "flush_s": FLUSH_S, "reference": reference or {}}


class NoMetrics:
    """Metrics off (the build left METRICS_FILE out): every hook does nothing."""

    def observe_inputs(self, original_hw: Sequence[tuple[int, int]]) -> None:
        pass

    def observe_results(self, results: Sequence[Any], original_hw: Sequence[tuple[int, int]]) -> None:
        pass

    def invalid(self, error: BaseException) -> None:
        pass

    def close(self) -> None:
        pass


class CVMetrics(NoMetrics):
    """The CV metrics of one Python step instance. `pb_utils` is Triton's module (a stand-in in unit tests)."""

    def __init__(self, pb_utils: Any, settings: dict, stage: str, version: str, flush_s: float | None = None) -> None:
        self.task = settings["task"]
        self.labels = {"model": settings["model"], "version": str(version)}
        window = int(settings.get("window_images", WINDOW_IMAGES))
        self.min_images = int(settings.get("min_window_images", MIN_WINDOW_IMAGES))
        self.signals = {s: SignalCounts(HISTOGRAMS[s], len(HISTOGRAMS[s]) + 1, window)
                        for s in stage_signals(stage, self.task)}
        self.class_names = class_labels(settings["classes"]) if stage == "postprocess" else []
        if self.class_names:
            self.signals[CLASS_SIGNAL] = SignalCounts(None, len(self.class_names), window)
        self.reference = {}
        for name, ref in (settings.get("reference") or {}).items():
            edges = HISTOGRAMS.get(name)
            if name in self.signals and ref.get("edges") == (list(edges) if edges else None) \
                    and len(ref["counts"]) == self.signals[name].bins and sum(ref["counts"]) > 0:
                self.reference[name] = np.asarray(ref["counts"], np.float64)
        self.invalid_counts = dict.fromkeys(INVALID_REASONS, 0)
        self._inputs: list[tuple[int, int]] = []
        self._results: list[tuple[Sequence[Any], Sequence[tuple[int, int]]]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._build_families(pb_utils, stage)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(flush_s or settings.get("flush_s", FLUSH_S),),
                                        name="focoos-cv-metrics", daemon=True)
        self._thread.start()

    def _build_families(self, pb: Any, stage: str) -> None:
        counter, gauge = pb.MetricFamily.COUNTER, pb.MetricFamily.GAUGE
        self._families = []  # families must outlive their metrics

        def family(name: str, description: str, kind: Any) -> Any:
            self._families.append(pb.MetricFamily(name=name, description=description, kind=kind))
            return self._families[-1]

        self._series: dict[str, list] = {}
        for name in self.signals:
            if name == CLASS_SIGNAL:
                continue
            help_text = DESCRIPTIONS[name] + " (histogram as counters)"
            bucket = family(f"focoos_{name}_bucket", help_text, counter)
            les = [_le(e) for e in HISTOGRAMS[name]] + ["+Inf"]
            self._series[name] = [
                [bucket.Metric(labels={**self.labels, "le": le}) for le in les],
                family(f"focoos_{name}_sum", help_text, counter).Metric(labels=self.labels),
                family(f"focoos_{name}_count", help_text, counter).Metric(labels=self.labels),
            ]
        if stage == "postprocess":
            self._empty = family("focoos_empty_results_total", "Images answered with no detection",
                                 counter).Metric(labels=self.labels)
            classes = family("focoos_class_detections_total", "Returned detections per class", counter)
            self._classes = [classes.Metric(labels={**self.labels, "class": c}) for c in self.class_names]
        invalid = family("focoos_invalid_input_total", "Requests refused as invalid input, by reason", counter)
        self._invalid = {r: invalid.Metric(labels={**self.labels, "stage": stage, "reason": r})
                         for r in INVALID_REASONS}
        if self.reference:
            drift = family("focoos_drift_psi", "Population-stability index of a signal over the recent window "
                           "against the build's reference", gauge)
            self._psi = {s: drift.Metric(labels={**self.labels, "signal": s}) for s in self.reference}

    # -- hooks (request path): a list append each
    def observe_inputs(self, original_hw: Sequence[tuple[int, int]]) -> None:
        with self._lock:
            self._inputs.extend(original_hw)

    def observe_results(self, results: Sequence[Any], original_hw: Sequence[tuple[int, int]]) -> None:
        with self._lock:
            self._results.append((results, original_hw))

    def invalid(self, error: BaseException) -> None:
        with self._lock:
            self.invalid_counts[invalid_reason(str(error))] += 1

    # -- export (background thread)
    def _run(self, flush_s: float) -> None:
        while not self._stop.wait(flush_s):
            self.flush()

    def flush(self) -> None:
        """Add what was counted since the last flush to the server's metrics and update the drift indexes."""
        with self._flush_lock:
            with self._lock:
                inputs, self._inputs = self._inputs, []
                batches, self._results = self._results, []
                invalid, self.invalid_counts = self.invalid_counts, dict.fromkeys(INVALID_REASONS, 0)
            empty = self._count(inputs, batches)
            taken = {name: counts.take() for name, counts in self.signals.items()}
            windows = {name: (self.signals[name].ring.sum(0), self.signals[name].seen) for name in self.reference}
            for name, (pending, total) in taken.items():
                if name == CLASS_SIGNAL:
                    for metric, n in zip(self._classes, pending, strict=True):
                        if n:
                            metric.increment(float(n))
                    continue
                buckets, sum_metric, count_metric = self._series[name]
                cumulative = np.cumsum(pending)
                if cumulative[-1] == 0:
                    continue
                for metric, n in zip(buckets, cumulative, strict=True):
                    if n:
                        metric.increment(float(n))
                sum_metric.increment(total)
                count_metric.increment(float(cumulative[-1]))
            if empty:
                self._empty.increment(float(empty))
            for reason, n in invalid.items():
                if n:
                    self._invalid[reason].increment(float(n))
            for name, (window, seen) in windows.items():
                value = psi(window, self.reference[name])
                if seen >= self.min_images and not math.isnan(value):
                    self._psi[name].set(value)

    def _count(self, inputs: list[tuple[int, int]], batches: list) -> int:
        """Count what the hooks queued into the signals, in arrival order; returns the images with no detection."""
        if inputs:
            pixels = np.array([float(h) * float(w) for h, w in inputs], np.float64)
            self.signals["input_pixels"].add(pixels, np.arange(len(pixels)), len(pixels))
        results = [r for batch, _ in batches for r in batch]
        if not results:
            return 0
        sizes = [hw for batch, hws in batches for hw in hws]
        for name, (values, owner) in image_signals(self.task, results, sizes).items():
            self.signals[name].add(values, owner, len(results))
        return sum(1 for r in results if not len(r.scores))

    def close(self) -> None:
        """Stop the thread and export what is left."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()


def _le(edge: float) -> str:
    """The `le` label as Prometheus clients write it (1 -> "1", 0.5 -> "0.5")."""
    return repr(float(edge)).removesuffix(".0") if float(edge).is_integer() else repr(float(edge))


def open_cv_metrics(args: dict, stage: str) -> NoMetrics:
    """The step's metrics: CVMetrics when its version folder has METRICS_FILE, else NoMetrics."""
    path = Path(args["model_repository"]) / str(args["model_version"]) / METRICS_FILE
    if not path.is_file():
        return NoMetrics()
    import triton_python_backend_utils as pb_utils

    return CVMetrics(pb_utils, json.loads(path.read_text()), stage, args["model_version"])


class _Answer:
    """The fields of processing's DetectionArrays that the signals read."""

    def __init__(self, scores: np.ndarray, classes: np.ndarray, masks: list[bytes] | None,
                 keypoints: np.ndarray | None) -> None:
        self.scores, self.classes, self.masks, self.keypoints = scores, classes, masks, keypoints


def answers_from_detections(detections: Any) -> _Answer:
    """A local model's FocoosDetections as the arrays the served step observes (masks: PNG bytes)."""
    import base64

    dets = detections.detections
    masks = [base64.b64decode(d.mask) for d in dets] if dets and dets[0].mask is not None else None
    keypoints = np.array([d.keypoints for d in dets], np.float32) if dets and dets[0].keypoints else None
    return _Answer(np.array([d.conf for d in dets], np.float64), np.array([d.cls_id for d in dets], np.int64),
                   masks, keypoints)
