"""The server a user would write instead of ours: FastAPI + uvicorn + ONNX Runtime, one worker, no Triton.

    python benchmarks/fastapi_baseline.py EXPORT_DIR --port 8080

EXPORT_DIR is a `model.export(RuntimeType.ONNX_CPU, ...)` folder (model.onnx + model_info.json).
POST /infer?threshold=0.5 with the encoded image as the body answers the detections as JSON:
cv2 decode, cv2 resize to the model input, ONNX Runtime with its default session, top-k in numpy
(the same numpy postprocessing as ours, so both servers give the same answer).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, HTTPException, Request

from focoos.infer.pipeline import postprocess_outputs
from focoos.ports import ModelInfo
from focoos.results import to_focoos_detections


def create_app(export_dir: Path) -> FastAPI:
    info = ModelInfo.model_validate(json.loads((export_dir / "model_info.json").read_text()))
    session = ort.InferenceSession(str(export_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    output_names = [o.name for o in session.get_outputs()]
    height, width = info.input_hw
    app = FastAPI()

    @app.post("/infer")
    async def infer(request: Request, threshold: float = 0.5) -> dict:
        image = cv2.imdecode(np.frombuffer(await request.body(), np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise HTTPException(status_code=400, detail="cannot decode the image")
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        pixels = cv2.resize(rgb.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        raw = session.run(output_names, {input_name: pixels.transpose(2, 0, 1)[None]})
        [result] = postprocess_outputs(info, dict(zip(output_names, raw, strict=True)), [rgb.shape[:2]], threshold)
        return to_focoos_detections(result, info.classes).model_dump(mode="json", exclude_none=True)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    uvicorn.run(create_app(args.export_dir), host=args.host, port=args.port, workers=1, log_level="warning")


if __name__ == "__main__":
    main()
