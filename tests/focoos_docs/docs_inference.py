# ruff: noqa: E402, E501, F401, F811, F821, I001
"""Focoos 0.25 docs/inference.md and tutorials/inference.ipynb, their code cells in order (MIT, FocoosAI).

Changed only where Focoos reaches the internet or the page leaves a blank for the reader:
- "fai-detr-l-obj365" -> "fai-detr-n-digits" (Focoos' weights live on its servers; the digits detector is bundled);
- "<YOUR-MODEL-REF>" -> the loopback hub's model; "<PATH-TO-IMAGE>" and the sample URL -> local photos;
  "/path/to/model" -> a local model folder this script fills first.
- `import os` added to the first cell (the page uses `os` without importing it); `display` is IPython's.
- The pages' remote (cloud) inference cells (`hub.get_remote_model(ref).infer(...)`) are not run: this package
  does not implement RemoteModel.infer (see tests/focoos_docs/docs_hub_remote_inference.py).
"""

import shutil
from pathlib import Path

from _shims import HUB_MODEL_REF, display

from focoos import ModelRegistry

Path("path/to/model").mkdir(parents=True, exist_ok=True)
_bundled = ModelRegistry.get_model_info("fai-detr-n-digits")
shutil.copy(ModelRegistry.registry_dir / _bundled.weights_uri, "path/to/model/model_final.pth")
_bundled.model_copy(update={"weights_uri": "model_final.pth"}).dump_json("path/to/model/model_info.json")

# ======== docs/inference.md
# ---- cell 0
import os

from focoos import FocoosHUB

FOCOOS_API_KEY = os.getenv("FOCOOS_API_KEY")  # write here your API key os set env variable FOCOOS_API_KEY, will be used as default
hub = FocoosHUB(api_key=FOCOOS_API_KEY)

# ---- cell 1
models = hub.list_remote_models()

# ---- cell 2
model_ref = HUB_MODEL_REF
model = hub.get_remote_model(model_ref)

# ---- cells 3-4 (remote inference: not run here)

# ---- cell 5
from focoos.model_manager import ModelManager
model_name = "fai-detr-n-digits"

model = ModelManager.get(model_name)

# ---- cell 6
from focoos import ModelManager

model_ref = HUB_MODEL_REF


model = ModelManager.get(f"hub://{model_ref}")

# ---- cell 7
from focoos import ModelManager

model_path = "path/to/model"


model = ModelManager.get(model_path)

# ---- cell 8
from PIL import Image

from focoos import annotate_image

image = Image.open("image.jpg")
detections = model.infer(image,annotate=True)

Image.fromarray(detections.image)

# ---- cell 9
model.benchmark(iterations=10, size=640)

# ---- cell 10
from focoos import RuntimeType

runtime = RuntimeType.TORCHSCRIPT_32

# ---- cell 11
# Export with square resolution (512x512)
optimized_model = model.export(runtime_type=runtime, image_size=512)

# Export with non-square resolution (640x480, height x width)
optimized_model = model.export(runtime_type=runtime, image_size=(640, 480))

# ---- cell 12
from focoos import annotate_image

detections = optimized_model(image, annotate = True)
Image.fromarray(detections.image)

# ---- cell 13
optimized_model.benchmark(iterations=10)

# ---- cell 14
from focoos import RuntimeType, annotate_image

runtime = RuntimeType.ONNX_TRT16
optimized_model = model.export(runtime_type=runtime)

detections = optimized_model(image)
display(annotate_image(image, detections, task=model.model_info.task, classes=model.model_info.classes))

# Benchmark with square resolution
optimized_model.benchmark(iterations=10, size=640)

# Benchmark with non-square resolution
optimized_model.benchmark(iterations=10, size=(640, 480))

# ======== tutorials/inference.ipynb (cell 0, `%pip install`, is the installation)
# ---- cell 1
from focoos import ModelManager

model_ref = "fai-detr-n-digits"  # use any of your models here

model = ModelManager.get(model_ref)

# ---- cell 2
from pprint import pprint

from PIL import Image

im_path = "pexels-abby-chung.jpg"

detections = model.infer(im_path, annotate=True)  # annotate=True will return an annotated image with the detections
Image.fromarray(detections.image)

# ---- cell 3
model.benchmark(iterations=10, size=640)

# ---- cell 4
from focoos import ModelManager, RuntimeType

model_ref = "fai-detr-n-digits"  # use any of pretrained focoos models or your own model

model = ModelManager.get(model_ref)
runtime = RuntimeType.TORCHSCRIPT_32  # use any of the supported runtimes
optimized_model = model.export(runtime_type=runtime, image_size=640, overwrite=True)

# ---- cell 5
from PIL import Image

im_path = "pexels-abby-chung.jpg"
detections = optimized_model.infer(im_path, annotate=True)
Image.fromarray(detections.image)

# ---- cell 6
optimized_model.benchmark(iterations=10)

# ---- cell 7
from focoos import RuntimeType

runtime = RuntimeType.ONNX_CUDA32
optimized_model = model.export(runtime_type=runtime)
im_path = "pexels-abby-chung.jpg"
detections = optimized_model.infer(im_path, annotate=True)
Image.fromarray(detections.image)

# ---- cell 8
from focoos import RuntimeType

runtime = RuntimeType.ONNX_TRT16
optimized_model = model.export(runtime_type=runtime)

detections = optimized_model.infer(im_path, annotate=True)
Image.fromarray(detections.image)

# ---- cell 9
import os

from focoos import FocoosHUB

FOCOOS_API_KEY = os.getenv(
    "FOCOOS_API_KEY"
)  # write here your API key, otherwise it will be loaded automatically from env vars
hub = FocoosHUB(api_key=FOCOOS_API_KEY)

# ---- cell 10
pprint(hub.list_remote_models())

# ---- cell 11
model_ref = HUB_MODEL_REF  # use any of your models here or focoos pretrained models

remote_model = hub.get_remote_model(model_ref)

# ---- cell 12 (remote inference: not run here)

print("DOC SCRIPT DONE")
