"""Encoded image bytes into the python backend: 1-D UINT8 (what the ensemble uses) vs TYPE_STRING.

    python benchmarks/bench_bytes_transport.py --requests 300

Serves two one-step python models on the embedded tritonserver that receive the same JPEG either
as UINT8 [1, n] or as a BYTES [1, 1] element, decode it with OpenCV and return its shape; prints
throughput and latency of both at concurrency 1 and 8 and the UINT8/STRING ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
from focoos.builder import TritonServer

from focoos.processing import encode_image

MODEL_PY = '''
import cv2
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            raw = data.reshape(-1)[0] if data.dtype == object else data.reshape(-1)
            buf = np.frombuffer(raw, np.uint8) if isinstance(raw, bytes) else raw
            shape = np.asarray([cv2.imdecode(buf, cv2.IMREAD_COLOR).shape], dtype=np.int32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("SHAPE", shape)]))
        return responses
'''

CONFIG = '''name: "{name}"
backend: "python"
max_batch_size: 8
input {{ name: "IMAGE" data_type: {dtype} dims: {dims} }}
output {{ name: "SHAPE" data_type: TYPE_INT32 dims: 3 }}
instance_group {{ kind: KIND_CPU count: 1 }}
'''


def build_repository(root: Path) -> None:
    for name, dtype, dims in (("bytes_uint8", "TYPE_UINT8", -1), ("bytes_string", "TYPE_STRING", 1)):
        (root / name / "1").mkdir(parents=True)
        (root / name / "1" / "model.py").write_text(MODEL_PY)
        (root / name / "config.pbtxt").write_text(CONFIG.format(name=name, dtype=dtype, dims=dims))


def load(client: grpcclient.InferenceServerClient, model: str, jpeg: bytes, requests: int, concurrency: int):
    if model == "bytes_uint8":
        array, dtype = np.frombuffer(jpeg, np.uint8)[None, :], "UINT8"
    else:
        array, dtype = np.array([[jpeg]], dtype=object), "BYTES"

    def call(_: int) -> float:
        tensor = grpcclient.InferInput("IMAGE", list(array.shape), dtype)
        tensor.set_data_from_numpy(array)
        start = time.perf_counter()
        client.infer(model, [tensor])
        return (time.perf_counter() - start) * 1000

    call(0)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(call, range(requests)))
    return statistics.median(latencies), requests / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    jpeg = encode_image(image)
    with tempfile.TemporaryDirectory() as tmp:
        build_repository(Path(tmp))
        with TritonServer(tmp) as server, grpcclient.InferenceServerClient(server.grpc_url) as client:
            print(f"JPEG of {len(jpeg)} bytes (640x480 noise), {args.requests} requests per row")
            print(f"{'input':<14}{'conc':>5}{'p50 ms':>9}{'req/s':>9}")
            for concurrency in (1, 8):
                rows = {m: load(client, m, jpeg, args.requests, concurrency) for m in ("bytes_uint8", "bytes_string")}
                for model, (p50, rps) in rows.items():
                    print(f"{model:<14}{concurrency:>5}{p50:>9.2f}{rps:>9.1f}")
                print(f"uint8/string throughput at concurrency {concurrency}: "
                      f"{rows['bytes_uint8'][1] / rows['bytes_string'][1]:.2f}x")


if __name__ == "__main__":
    main()
