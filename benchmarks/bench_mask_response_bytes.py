"""Bytes per segmentation response: PNG crops (what the ensemble returns) vs full-size mask maps.

    python benchmarks/bench_mask_response_bytes.py --model fai-mf-n-digits-ins
    python benchmarks/bench_mask_response_bytes.py --model fai-mf-m-coco-ins --im-size 512

Builds the model into an embedded Triton repository, sends one 1280x720 image (the ROCKET photo
from scikit-image resized, or a digits canvas for the digits models) and prints the size of the
gRPC response message next to what the same detections would cost as K full-size uint8 maps and
as K full-size float32 probability maps, with the ratios.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

import cv2
import numpy as np
import tritonclient.grpc as grpcclient
from focoos.builder import RepositoryBuilder, TritonServer

from focoos import ModelManager, NoWeightsWarning, RuntimeType
from focoos.processing import encode_image
from focoos.processing.transport import MASKS, NUM_DETECTIONS, pack_images

WIDTH, HEIGHT = 1280, 720


def test_image(model_name: str) -> np.ndarray:
    if "digits" in model_name:
        from focoos.samples import digit_canvases

        return cv2.resize(next(iter(digit_canvases(1, size=512).values())), (WIDTH, HEIGHT))
    from focoos.samples import sample_images

    return cv2.resize(sample_images(("rocket",))["rocket"], (WIDTH, HEIGHT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="fai-mf-n-digits-ins")
    parser.add_argument("--im-size", type=int, default=None, help="network input size (default: the model's)")
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoWeightsWarning)
        overrides = {"im_size": args.im_size} if args.im_size else {}
        model = ModelManager.get(args.model, device="cpu", allow_random_weights=True, **overrides)
    image = test_image(args.model)
    packed, _ = pack_images([encode_image(image, ".jpg")])
    with tempfile.TemporaryDirectory() as tmp:
        RepositoryBuilder(tmp).add(model, runtime_type=RuntimeType.ONNX_CPU, name="seg", target="embedded",
                                   max_batch_size=1, preprocess_instances=1, postprocess_instances=1)
        with TritonServer(tmp) as server, grpcclient.InferenceServerClient(server.grpc_url) as client:
            tensor = grpcclient.InferInput("IMAGE", list(packed.shape), "UINT8")
            tensor.set_data_from_numpy(packed)
            result = client.infer("seg", [tensor], parameters={"threshold": args.threshold})
    response = result.get_response().ByteSize()
    count = int(result.as_numpy(NUM_DETECTIONS)[0, 0])
    png_bytes = sum(len(m) for m in result.as_numpy(MASKS)[0, :count])
    full_uint8 = count * WIDTH * HEIGHT
    print(f"{args.model} on a {WIDTH}x{HEIGHT} image, threshold {args.threshold}: {count} masks")
    print(f"gRPC response message       {response:>12,} bytes (mask PNGs {png_bytes:,}, the rest boxes/scores/padding)")
    print(f"as K full-size uint8 maps   {full_uint8:>12,} bytes  ratio {full_uint8 / response:,.0f}x")
    print(f"as K full-size float32 maps {4 * full_uint8:>12,} bytes  ratio {4 * full_uint8 / response:,.0f}x")


if __name__ == "__main__":
    main()
