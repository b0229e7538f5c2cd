"""Hostile and careless inputs against a real tritonserver: each gets a typed error or an answer, no request raises
the server's memory by more than MAX_REQUEST_GROWTH, and the inner steps check what they are handed as if called
directly. Memory is the proportional set size (PSS) of the server's process tree, so shared memory between the
server and its Python stubs counts once."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from focoos import RuntimeType
from focoos.processing import InvalidInputError, decode_mask, encode_image, load_image
from focoos.processing.postprocess import check_network_outputs, postprocess_detr, postprocess_instance
from focoos.processing.transport import MAX_REQUEST_PIXELS, pack_images, unpack_images
from tests.conftest import make_scene, quiet_get

pytestmark = pytest.mark.slow
MB = 1 << 20
MAX_REQUEST_GROWTH = 512 * MB  # the README's bound on what one request may add to the server's idle memory
SEG, DET = "seg", "det"


def _tree_pss(root: int) -> int:
    """Bytes of PSS of a process and all its descendants (the Python stubs are the server's children)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += next(int(line.split()[1]) * 1024 for line in rollup.splitlines() if line.startswith("Pss:"))
    return total


def _peak_growth(pid: int, call: Callable[[], object]) -> tuple[int, float, object]:
    """(peak PSS over the idle PSS while `call` runs, seconds it took, what it returned or raised)."""
    idle = _tree_pss(pid)
    peak, done = [idle], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_pss(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    try:
        outcome = call()
    except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
        outcome = exc
    elapsed = time.perf_counter() - start
    time.sleep(0.05)
    done.set()
    sampler.join()
    return max(peak[0], _tree_pss(pid)) - idle, elapsed, outcome


@pytest.fixture(scope="module")
def server(small_detr, serve_repository):
    seg = quiet_get("fai-mf-n-digits-ins", device="cpu")  # the trained instance segmenter: real masks
    return serve_repository({SEG: (seg, RuntimeType.ONNX_CPU), DET: (small_detr, RuntimeType.ONNX_CPU)},
                            max_batch_size=8)


@pytest.fixture(scope="module")
def client(server):
    with grpcclient.InferenceServerClient(server.grpc_url) as c:
        for model in (SEG, DET):  # stubs warm: their first-call allocations are idle memory, not a request's
            c.infer(model, _image_inputs([make_scene()]))
        yield c


def _tensor(name: str, array: np.ndarray, dtype: str) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput(name, list(array.shape), dtype)
    tensor.set_data_from_numpy(array)
    return tensor


def _image_inputs(images: list) -> list[grpcclient.InferInput]:
    packed, shapes = pack_images(images)
    tensors = [_tensor("IMAGE", packed, "UINT8")]
    if shapes is not None:
        tensors.append(_tensor("IMAGE_SHAPE", shapes, "INT32"))
    return tensors


@functools.cache
def _digits_png(height: int, width: int) -> bytes:
    """A flat image with a few large strokes: a small PNG of many pixels (8192x8192 is about 0.2 MB)."""
    image = np.full((height, width, 3), 30, np.uint8)
    for i in range(4):
        cv2.putText(image, str(i + 3), (width * i // 4, height * 3 // 4), cv2.FONT_HERSHEY_SIMPLEX,
                    height / 60, (230, 230, 230), max(1, height // 40))
    return encode_image(image, ".png")


def _hdr() -> bytes:
    ok, data = cv2.imencode(".hdr", np.ones((64, 64, 3), np.float32))
    assert ok
    return data.tobytes()


def _measure(server, call: Callable[[], object], label: str) -> object:
    growth, elapsed, outcome = _peak_growth(server.pid, call)
    print(f"{label}: +{growth / MB:.0f} MB peak over idle, {elapsed:.2f} s, "
          f"{type(outcome).__name__}: {str(outcome)[:120]}")
    assert growth < MAX_REQUEST_GROWTH, f"{label} raised the server's memory by {growth / MB:.0f} MB"
    return outcome


def _refused(outcome: object, message: str) -> None:
    assert isinstance(outcome, InferenceServerException), outcome
    assert outcome.status() == "StatusCode.INVALID_ARGUMENT", outcome
    assert message in outcome.message(), outcome.message()


@pytest.mark.parametrize(
    ("label", "model", "images", "message"),
    [
        ("8192x8192 png to the segmenter", SEG, lambda: [_digits_png(8192, 8192)], "pixels per request"),
        ("8 pngs of 8192x8192 in one request", DET, lambda: [_digits_png(8192, 8192)] * 8, "pixels per request"),
        ("radiance hdr", DET, lambda: [_hdr()], "not one of JPEG, PNG"),
    ],
)
def test_images_over_the_budget_or_off_the_format_list_are_refused_before_decoding(
    server, client, label, model, images, message
):
    inputs = _image_inputs(images())
    outcome = _measure(server, lambda: client.infer(model, inputs, parameters={"threshold": 0.0}), label)
    _refused(outcome, message)


@pytest.mark.parametrize("encoding", ["png", "raw"])
def test_the_largest_image_within_the_budget_is_answered_within_the_memory_bound(server, client, encoding):
    height, width = 4000, MAX_REQUEST_PIXELS // 4000  # the largest photo allowed, at threshold 0: every mask
    png = _digits_png(height, width)
    inputs = _image_inputs([png if encoding == "png" else load_image(png)])
    result = _measure(server, lambda: client.infer(SEG, inputs, parameters={"threshold": 0.0}),
                      f"{height}x{width} {encoding} to the segmenter at threshold 0")
    assert not isinstance(result, Exception), result
    boxes = result.as_numpy("BOXES")[0, : int(result.as_numpy("NUM_DETECTIONS")[0, 0])]
    assert len(boxes) > 0 and np.isfinite(boxes).all()
    assert boxes[:, 2].max() <= width and boxes[:, 3].max() <= height


def test_raw_pixels_over_the_budget_are_refused_from_the_declared_shape(server, client):
    side = int(MAX_REQUEST_PIXELS**0.5) + 1
    inputs = [_tensor("IMAGE", np.zeros((1, 12), np.uint8), "UINT8"),
              _tensor("IMAGE_SHAPE", np.array([[side, side, 3]], np.int32), "INT32")]
    _refused(_measure(server, lambda: client.infer(DET, inputs), f"raw {side}x{side}"), "invalid raw image shape")


def _step_inputs(client, step: str, arrays: dict[str, np.ndarray]) -> list[grpcclient.InferInput]:
    """Inputs for an inner step called directly, in its config's types."""
    config = client.get_model_config(step, as_json=True)["config"]
    types = {t["name"]: t["data_type"].removeprefix("TYPE_") for t in config["input"]}
    return [_tensor(name, array, types[name]) for name, array in arrays.items()]


def _network_outputs(client, model: str) -> dict[str, np.ndarray]:
    """What the network step answers for a grey image: well-formed inputs for its postprocess step."""
    config = client.get_model_config(f"{model}_model", as_json=True)["config"]
    name, dims = config["input"][0]["name"], [int(d) if int(d) > 0 else 64 for d in config["input"][0]["dims"]]
    result = client.infer(f"{model}_model", [_tensor(name, np.full([1, *dims], 127, np.float32), "FP32")])
    post = client.get_model_config(f"{model}_postprocess", as_json=True)["config"]
    arrays = {t["name"]: result.as_numpy(t["name"]).copy() for t in post["input"] if t["name"] in
              {o["name"] for o in config["output"]}}
    return {**arrays, "ORIGINAL_HW": np.array([[480, 640]], np.int32)}


def _nan_logits(arrays: dict[str, np.ndarray]) -> None:
    arrays["logits"][0, 3, 0] = np.nan


@pytest.mark.parametrize(
    ("label", "spoil", "message"),
    [
        ("ORIGINAL_HW 8000x8000", lambda a: a.update(ORIGINAL_HW=np.array([[8000, 8000]], np.int32)),
         "pixels per request"),
        ("ORIGINAL_HW 0x0", lambda a: a.update(ORIGINAL_HW=np.array([[0, 0]], np.int32)), "no pixels"),
        ("ORIGINAL_HW negative", lambda a: a.update(ORIGINAL_HW=np.array([[-5, 100]], np.int32)), "no pixels"),
        ("NaN mask logits", _nan_logits, "NaN or infinite"),
    ],
)
def test_the_segmentation_postprocess_step_checks_what_it_is_handed(server, client, label, spoil, message):
    arrays = _network_outputs(client, SEG)
    spoil(arrays)
    inputs = _step_inputs(client, f"{SEG}_postprocess", arrays)
    outcome = _measure(server, lambda: client.infer(f"{SEG}_postprocess", inputs, parameters={"threshold": 0.0}),
                       f"{SEG}_postprocess called directly with {label}")
    _refused(outcome, message)


def test_the_detection_postprocess_step_refuses_inf_boxes(client):
    arrays = _network_outputs(client, DET)
    arrays["boxes"][0, 0, 0] = np.inf
    with pytest.raises(InferenceServerException) as excinfo:
        client.infer(f"{DET}_postprocess", _step_inputs(client, f"{DET}_postprocess", arrays),
                     parameters={"threshold": 0.0})
    _refused(excinfo.value, "NaN or infinite")


def test_a_bad_request_in_a_dynamic_batch_of_the_network_step_fails_only_itself(client):
    step = f"{DET}_model"
    config = client.get_model_config(step, as_json=True)["config"]
    name, dims = config["input"][0]["name"], [int(d) if int(d) > 0 else 64 for d in config["input"][0]["dims"]]
    good = np.random.default_rng(0).uniform(0, 255, [1, *dims]).astype(np.float32)
    bad = good.copy()
    bad[0, 0, 0, 0] = np.nan

    def call(batch: np.ndarray) -> object:
        try:
            return client.infer(step, [_tensor(name, batch, "FP32")])
        except InferenceServerException as exc:
            return exc

    for _ in range(3):  # concurrent calls: the dynamic batcher groups some of them into one execute()
        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(call, [good, good, bad, good, good, bad, good, good]))
        for batch, outcome in zip([good, good, bad, good, good, bad, good, good], outcomes, strict=True):
            if batch is bad:
                _refused(outcome, "NaN or infinite")
            else:
                assert not isinstance(outcome, Exception), outcome
                assert all(np.isfinite(outcome.as_numpy(o["name"])).all() for o in config["output"])


def test_the_server_still_serves_after_the_hostile_inputs(client):
    result = client.infer(SEG, _image_inputs([make_scene()]), parameters={"threshold": 0.0})
    assert int(result.as_numpy("NUM_DETECTIONS")[0, 0]) >= 0
    assert client.is_server_ready()


# The same checks, called in-process: local inference and the served steps share them.


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_pixel_arrays_are_invalid_input_not_zeros(scene, value):
    pixels = scene.astype(np.float32) / 255.0
    pixels[3, 4, 1] = value
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        load_image(pixels)


def test_unpack_refuses_a_request_over_the_budget_before_decoding_any_image():
    side = 2048
    packed, shapes = pack_images([_digits_png(side, side)] * (MAX_REQUEST_PIXELS // side**2 + 1))
    with pytest.raises(InvalidInputError, match="pixels per request"):
        unpack_images(packed, shapes)
    images, sizes = unpack_images(*pack_images([_digits_png(side, side)]))
    assert sizes == [(side, side)] and images[0].shape == (side, side, 3)


@pytest.mark.parametrize("ext", [".hdr", ".pfm", ".tiff", ".ppm"])
def test_formats_off_the_list_are_refused(ext):
    ok, data = cv2.imencode(ext, np.ones((8, 8, 3), np.float32 if ext in (".hdr", ".pfm") else np.uint8))
    if not ok:
        pytest.skip(f"this OpenCV cannot write {ext}")
    with pytest.raises(InvalidInputError, match="not one of JPEG, PNG"):
        load_image(data.tobytes())


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp"])
def test_formats_on_the_list_decode(scene, ext):
    assert load_image(encode_image(scene, ext)).shape == scene.shape


def test_postprocessing_refuses_nan_outputs_and_empty_sizes():
    boxes, scores = np.full((1, 5, 4), 0.5, np.float32), np.full((1, 5, 2), 0.9, np.float32)
    scores[0, 1, 1] = np.nan
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        check_network_outputs({"boxes": boxes, "logits": scores}, [(10, 10)])
    with pytest.raises(InvalidInputError, match="positive"):
        check_network_outputs({"boxes": boxes, "logits": np.ones_like(scores)}, [(0, 0)])
    with pytest.raises(InvalidInputError, match="empty"):
        check_network_outputs({"boxes": boxes[:, :0], "logits": scores[:, :0]}, [(10, 10)])
    assert len(postprocess_detr(boxes, np.ones_like(scores), [(10, 10)], 0.0, 5)[0].scores) == 5


def test_instance_masks_upsample_only_where_a_mask_can_be():
    """A mask far smaller than the image costs its own size: its crop equals the crop of a full upsampling."""
    maps = np.zeros((1, 2, 40, 40), np.float32)
    maps[0, 0, 10:14, 20:23] = 0.95
    maps[0, 1] = np.linspace(0, 1, 40, dtype=np.float32)[None, :]  # half the image
    logits = np.array([[[0.9, 0.1], [0.2, 0.8]]], np.float32)
    (served,) = postprocess_instance(logits, maps, [(4000, 6000)], threshold=0.0, use_mask_score=True)
    full = [cv2.resize(m, (6000, 4000), interpolation=cv2.INTER_LINEAR) >= 0.5 for m in maps[0]]
    for box, png, expected in zip(served.boxes, served.masks, full, strict=True):
        x1, y1, x2, y2 = (int(v) for v in box)
        rows, cols = np.flatnonzero(expected.any(1)), np.flatnonzero(expected.any(0))
        assert (x1, y1, x2, y2) == (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
        assert (decode_mask(png) == expected[y1:y2, x1:x2]).mean() > 0.9999
