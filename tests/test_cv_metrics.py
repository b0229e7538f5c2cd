"""CV metrics of the Python steps (builder/python_models/cv_metrics.py) without a server: what they count,
how they export it, the drift index, and what the builder writes. tests/test_prometheus_scrape.py checks the
same metrics on a real tritonserver scraped by a real Prometheus."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from focoos.builder import RepositoryBuilder
from focoos.builder.python_models import cv_metrics as cv

from focoos import RuntimeType
from focoos.processing import DetectionArrays, InvalidInputError, encode_mask, validate_threshold
from focoos.processing.annotate import KEYPOINT_THRESHOLD
from focoos.processing.transport import MAX_REQUEST_PIXELS, check_request_pixels, pack_images, unpack_images


class FakeMetric:
    def __init__(self, family: FakeFamily, labels: dict) -> None:
        self.family, self.labels, self.value = family, labels, 0.0

    def increment(self, value: float) -> None:
        assert self.family.kind == "counter" and value > 0, "counters only go up, and only changed ones are sent"
        self.value += value
        self.family.calls += 1

    def set(self, value: float) -> None:
        assert self.family.kind == "gauge"
        self.value = value


class FakeFamily:
    """pb_utils.MetricFamily's interface, recording values."""

    COUNTER, GAUGE = "counter", "gauge"
    registry: dict[str, FakeFamily] = {}

    def __init__(self, name: str, description: str, kind: str) -> None:
        self.name, self.kind, self.metrics, self.calls = name, kind, [], 0
        FakeFamily.registry[name] = self

    def Metric(self, labels: dict) -> FakeMetric:  # noqa: N802 - pb_utils' name
        self.metrics.append(FakeMetric(self, labels))
        return self.metrics[-1]


class FakePbUtils:
    MetricFamily = FakeFamily


def value(name: str, **labels: str) -> float:
    [metric] = [m for m in FakeFamily.registry[name].metrics if labels.items() <= m.labels.items()]
    return metric.value


def settings(task: str = "detection", reference: dict | None = None, min_images: int = 1) -> dict:
    return {**cv.metrics_settings("det", task, ["a", "b"], reference), "min_window_images": min_images}


def results() -> list[DetectionArrays]:
    return [DetectionArrays(np.zeros((3, 4)), np.array([0.95, 0.5, 0.31], np.float32), np.array([0, 1, 1])),
            DetectionArrays(np.zeros((0, 4)), np.zeros(0, np.float32), np.zeros(0, np.int64)),
            DetectionArrays(np.zeros((1, 4)), np.array([0.1], np.float32), np.array([7]))]


@pytest.fixture()
def metrics():
    FakeFamily.registry.clear()
    made = []

    def make(stage: str = "postprocess", **kwargs) -> cv.CVMetrics:
        made.append(cv.CVMetrics(FakePbUtils, settings(**kwargs), stage, "3", flush_s=3600))
        return made[-1]

    yield make
    for m in made:
        m.close()


def test_buckets_follow_prometheus_le_semantics():
    edges = cv.HISTOGRAMS["kept_score"]
    values = np.array([0.1, np.float32(0.1), 0.5, 1.0, 1.5], np.float64)
    assert cv.bucket_index(edges, values).tolist() == [0, 1, 4, len(edges) - 1, len(edges)]
    assert [cv._le(e) for e in (0, 1, 0.5, 4096)] == ["0", "1", "0.5", "4096"]


def test_postprocess_counts_are_exported_as_prometheus_histograms(metrics):
    m = metrics()
    m.observe_results(results(), [(100, 200)] * 3)
    m.invalid(InvalidInputError("threshold must be in [0, 1], got 2.0"))
    m.flush()
    labels = {"model": "det", "version": "3"}
    assert value("focoos_detections_per_image_count", **labels) == 3
    assert value("focoos_detections_per_image_sum", **labels) == 4
    assert value("focoos_detections_per_image_bucket", le="0") == 1
    assert value("focoos_detections_per_image_bucket", le="1") == 2
    assert value("focoos_detections_per_image_bucket", le="+Inf") == 3
    assert value("focoos_kept_score_count") == 4
    assert value("focoos_kept_score_sum") == pytest.approx(0.95 + 0.5 + 0.31 + 0.1, abs=1e-6)
    assert value("focoos_kept_score_bucket", le="0.1") == 0  # float32 0.1 is above 0.1, as the client sees it
    assert value("focoos_kept_score_bucket", le="0.2") == 1 and value("focoos_kept_score_bucket", le="0.5") == 3
    assert value("focoos_top_score_count") == 2 and value("focoos_top_score_bucket", le="0.9") == 1
    assert value("focoos_empty_results_total") == 1
    assert [value("focoos_class_detections_total", **{"class": c}) for c in ("a", "b", "_unknown")] == [1, 2, 1]
    assert value("focoos_invalid_input_total", stage="postprocess", reason="bad_option") == 1
    # bounded: every series exists from the start (rate() sees the first increment), no new ones later
    series = sum(len(f.metrics) for f in FakeFamily.registry.values())
    m.observe_results(results(), [(100, 200)] * 3)
    m.flush()
    assert sum(len(f.metrics) for f in FakeFamily.registry.values()) == series
    assert value("focoos_kept_score_count") == 8
    assert "focoos_drift_psi" not in FakeFamily.registry  # no reference, no drift index
    assert "focoos_mask_area_fraction_count" not in FakeFamily.registry


def test_a_flush_sends_only_what_changed(metrics):
    m = metrics()
    m.flush()
    assert sum(f.calls for f in FakeFamily.registry.values()) == 0
    m.observe_results(results()[:1], [(10, 10)])
    m.flush()
    calls = sum(f.calls for f in FakeFamily.registry.values())
    assert 0 < calls < 60, "one call per changed series, not per value"


def test_preprocess_counts_input_pixels_and_refusal_reasons(metrics):
    m = metrics("preprocess")
    m.observe_inputs([(480, 640), (100, 100)])
    too_big = int(math.isqrt(MAX_REQUEST_PIXELS)) + 1
    for refuse in (lambda: unpack_images(pack_images([b"not an image"])[0], None),
                   lambda: check_request_pixels([(too_big, too_big)]),
                   lambda: check_request_pixels([(0, 5)]),
                   lambda: unpack_images(np.zeros((1, 4), np.float32), None)):
        with pytest.raises(InvalidInputError) as error:
            refuse()
        m.invalid(error.value)
    m.flush()
    assert value("focoos_input_pixels_count") == 2 and value("focoos_input_pixels_sum") == 480 * 640 + 100 * 100
    assert value("focoos_input_pixels_bucket", le="16384") == 1
    reasons = {r: value("focoos_invalid_input_total", reason=r) for r in cv.INVALID_REASONS}
    assert reasons == {**dict.fromkeys(cv.INVALID_REASONS, 0), "undecodable": 1, "too_large": 1, "no_pixels": 1,
                       "bad_tensor": 1}
    assert "focoos_class_detections_total" not in FakeFamily.registry


def test_invalid_reason_of_the_options_refused():
    with pytest.raises(InvalidInputError) as error:
        validate_threshold(3)
    assert cv.invalid_reason(str(error.value)) == "bad_option"
    assert cv.invalid_reason("something new") == "other"


def test_drift_index_against_the_reference(metrics):
    observed = results()
    reference = cv.reference_from_results("detection", ["a", "b"], observed, [(100, 200)] * 3)
    assert reference["images"] == 3 and sum(reference["kept_score"]["counts"]) == 4
    m = metrics(reference=reference, min_images=3)
    m.observe_results(observed[:2], [(100, 200)] * 2)
    m.flush()
    assert all(metric.value == 0 for metric in FakeFamily.registry["focoos_drift_psi"].metrics), "window too small"
    m.observe_results(observed[2:], [(100, 200)])
    m.flush()
    assert value("focoos_drift_psi", signal="kept_score") == pytest.approx(0, abs=1e-12)  # same as the reference
    for _ in range(5):  # now only confident, single detections of class a
        m.observe_results([DetectionArrays(np.zeros((1, 4)), np.array([0.97], np.float32), np.array([0]))],
                          [(100, 200)])
    m.flush()
    assert value("focoos_drift_psi", signal="top_score") > 0.25
    assert value("focoos_drift_psi", signal="class") > 0.25
    assert {metric.labels["signal"] for metric in FakeFamily.registry["focoos_drift_psi"].metrics} == {
        "detections_per_image", "top_score", "kept_score", "class"}  # input_pixels: the preprocess step's


def test_psi_and_the_window():
    assert cv.psi([10, 0, 10], [1, 0, 1]) == pytest.approx(0)
    expected = (0.9 - 0.5) * math.log(0.9 / 0.5) + (0.1 - 0.5) * math.log(0.1 / 0.5)
    assert cv.psi([9, 1], [5, 5]) == pytest.approx(expected)
    counts = cv.SignalCounts((1, 2), 3, window=4)
    for v in (0, 0, 0, 5, 5, 5):  # the window keeps the last 4 images
        counts.add(np.array([v], np.float64), np.array([0]), 1)
    assert counts.ring.sum(0).tolist() == [1, 0, 3] and counts.seen == 4


def test_masks_and_keypoints(metrics):
    mask = np.zeros((10, 20), bool)
    mask[:5, :] = True  # 100 pixels of a 100 x 100 image
    assert cv.mask_area_fractions([encode_mask(mask)], (100, 100)).tolist() == [0.01]
    seg = metrics(task="instseg")
    seg.observe_results([DetectionArrays(np.zeros((1, 4)), np.array([0.8], np.float32), np.array([0]),
                                         [encode_mask(mask)])], [(100, 100)])
    seg.flush()
    assert value("focoos_mask_area_fraction_bucket", le="0.01") == 1
    assert cv.KEYPOINT_VISIBLE == KEYPOINT_THRESHOLD
    people = np.zeros((2, 17, 3), np.float32)
    people[0, :5, 2] = 0.9
    people[1, :, 2] = 0.6
    kp = metrics(task="keypoint")
    kp.observe_results([DetectionArrays(np.zeros((2, 4)), np.array([0.8, 0.7], np.float32), np.array([0, 0]),
                                        None, people)], [(100, 100)])
    kp.flush()
    assert value("focoos_visible_keypoints_sum") == 5 + 17 and value("focoos_visible_keypoints_bucket", le="6") == 1


def test_builder_can_leave_the_metrics_out(small_detr, tmp_path):
    RepositoryBuilder(tmp_path).add(small_detr, runtime_type=RuntimeType.ONNX_CPU, name="d", target="embedded",
                                    cv_metrics=False)
    for step in ("d_preprocess", "d_postprocess"):
        assert (tmp_path / step / "1" / "focoos_cv_metrics.py").is_file()
        assert not (tmp_path / step / "1" / cv.METRICS_FILE).exists()
    assert isinstance(cv.open_cv_metrics({"model_repository": str(tmp_path / "d_postprocess"), "model_version": "1"},
                                         "postprocess"), cv.NoMetrics)


def test_a_recorded_reference_is_written_as_given(small_detr, tmp_path):
    reference = {"kept_score": {"edges": list(cv.SCORE_EDGES), "counts": [1] * (len(cv.SCORE_EDGES) + 1)}}
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(reference))
    from focoos.builder.repository import _cv_reference

    assert _cv_reference(small_detr, small_detr.model_info, path, 0.5) == reference
    assert _cv_reference(small_detr, small_detr.model_info, None, 0.5) is None
