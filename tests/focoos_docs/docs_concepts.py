# ruff: noqa: E402, E501, F401, F811, F821, I001
"""Focoos 0.25 docs/concepts.md, its Python code cells in order (MIT, FocoosAI).

Changed only where Focoos reaches the internet or the page leaves a blank for the reader:
- registry models with weights on Focoos' servers -> the bundled digits models ("fai-detr-l-coco" ->
  "fai-detr-n-digits", "fai-mf-l-ade" -> "bisenetformer-n-digits-sem");
- "your_api_key", "hub://model_reference" -> the loopback hub's key and model; `config_parameter=your_value`,
  `arg1=value1, arg2=value2` -> real config keys; "/custom/models/dir/..." and "path/to/..." -> local folders
  this script fills first; "example.jpg", `image`, `input_image` -> a local photo; `train_dataset`/`val_dataset`
  -> the digits dataset.
- `from focoos import FocoosHub` is a typo of the page (Focoos has no such name): FocoosHUB.
- the multi-GPU training cell (num_gpus=2) runs only where two GPUs exist; the export cells (6-8) export the
  bundled digits detector rather than the page's untrained ResNet-50 one (minutes of CPU).
"""

import shutil
from pathlib import Path

from _shims import API_KEY, HUB_MODEL_REF, gpus

# the reader's own model folders and files the page refers to
for folder in ("custom/models/dir/my_model", "custom/models/dir/local_model", "path/to"):
    Path(folder).mkdir(parents=True, exist_ok=True)
    from focoos import ModelRegistry

    bundled = ModelRegistry.get_model_info("fai-detr-n-digits")
    shutil.copy(ModelRegistry.registry_dir / bundled.weights_uri, f"{folder}/model_final.pth")
    bundled.model_copy(update={"weights_uri": str(Path(folder, "model_final.pth").resolve())}).dump_json(
        f"{folder}/model_info.json")

# the reader's "path/to/weights.pth": a checkpoint of the page's custom 3-class ResNet-50 detector
import warnings

from focoos import ModelFamily, ModelInfo, ModelManager, Task
from focoos.weights import save_checkpoint

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # untrained on purpose: only the checkpoint's layout matters
    untrained = ModelManager.get("custom_detector", model_info=ModelInfo(
        name="custom_detector", model_family=ModelFamily.DETR, classes=["person", "car", "bicycle"], im_size=640,
        task=Task.DETECTION, config={"num_classes": 3, "backbone_config": {"depth": 50, "model_type": "resnet"}}))
save_checkpoint(untrained.model, Path("path/to/weights.pth"))
del untrained

# ---- cell 0
from focoos import FocoosHUB, ModelManager
# Loading from hub using hub:// protocol
# The model is automatically downloaded and cached locally
hub = FocoosHUB(api_key=API_KEY)
model = ModelManager.get(f"hub://{HUB_MODEL_REF}", hub=hub)

# Loading with custom configuration override
model = ModelManager.get(
    f"hub://{HUB_MODEL_REF}",
    hub=hub,
    cache=True,  # Cache for faster subsequent loads
    threshold=0.4 # Override single config parameter
)

# ---- cell 1
from focoos import ModelRegistry, ModelManager
# Loading pretrained models from registry
# Object detection model trained on COCO dataset
model = ModelManager.get("fai-detr-n-digits")

# Semantic segmentation model for ADE20K dataset
model = ModelManager.get("bisenetformer-n-digits-sem")

# Check available models first
available_models = ModelRegistry.list_models()
print("Available models:", available_models)

# Get detailed information before loading
model_info = ModelRegistry.get_model_info("fai-detr-l-coco")
print(f"Classes: {len(model_info.classes)}, Task: {model_info.task}")

# ---- cell 2
# Loading with custom models directory
model = ModelManager.get("custom/models/dir/my_model")

# Expected directory structure:
# /path/to/local/model/
# ├── model_info.json     # Model metadata and configuration
# ├── model_final.pth     # Model weights (optional)

# Loading with configuration override
model = ModelManager.get(
    "custom/models/dir/local_model",
    threshold=0.4,
    top_k=100,
)

# ---- cell 3
from focoos import ModelInfo, ModelFamily, Task
# Loading from JSON file
model_info = ModelInfo.from_json("path/to/model_info.json")
model = ModelManager.get("any_name", model_info=model_info)

# Programmatically creating ModelInfo

model_info = ModelInfo(
    name="custom_detector",
    model_family=ModelFamily.DETR,
    classes=["person", "car", "bicycle"],
    im_size=640,  # Square image (640x640), or use (640, 480) for non-square (height, width)
    task=Task.DETECTION,
    config={
        "num_classes": 3,
        "backbone_config": {"depth": 50, "model_type": "resnet"},
        "threshold": 0.5
    },
    weights_uri="path/to/weights.pth",  # Optional
    description="Custom object detector"
)

model = ModelManager.get("custom_detector", model_info=model_info)

# ---- cell 4
from PIL import Image

# Load an image
im_path = "example.jpg"

# Run inference
detections = model.infer(im_path,threshold=0.5,annotate=True)

# Access results
for detection in detections.detections:
    print(f"Class: {detection.label}, Confidence: {detection.conf}")
    print(f"Bounding box: {detection.bbox}")

Image.fromarray(detections.image)

# ---- cell 5 (num_gpus=2: only where two GPUs exist)
from focoos import TrainerArgs
from focoos.data import MapDataset

if gpus() >= 2:
    from focoos import DatasetLayout, DatasetSplitType
    from focoos.data import AutoDataset, get_default_by_task

    auto_dataset = AutoDataset(dataset_name="my_dataset.zip", task=Task.DETECTION, layout=DatasetLayout.ROBOFLOW_COCO)
    train_augs, val_augs = get_default_by_task(Task.DETECTION, 640)
    train_dataset = auto_dataset.get_split(augs=train_augs, split=DatasetSplitType.TRAIN)
    val_dataset = auto_dataset.get_split(augs=val_augs, split=DatasetSplitType.VAL)

    # Configure training
    train_args = TrainerArgs(
        run_name="my_custom_model",
        max_iters=5000,
        batch_size=16,
        learning_rate=1e-4,
        num_gpus=2,
        sync_to_hub=True,
    )

    # Train the model
    model.train(train_args, train_dataset, val_dataset, hub=hub)

# ---- cell 6 (cells 6-8 export `model`, any loaded model: the bundled digits detector here, as exporting the
# custom ResNet-50 detector at 640 three times takes minutes on a CI CPU)
from focoos import RuntimeType

model = ModelManager.get("fai-detr-n-digits")

image = input_image = "example.jpg"
# Export to ONNX with TensorRT optimization
infer_model = model.export(
    runtime_type=RuntimeType.ONNX_TRT16,
    out_dir="./exported_models",
    overwrite=True
)

# Use exported model for fast inference
fast_detections = infer_model(image)

# ---- cell 7
# Export the model to ONNX format
infer_model = model.export(
    runtime_type=RuntimeType.TORCHSCRIPT_32,
    out_dir="./exported_models"
)

# Use the exported model for inference
results = infer_model(input_image)

# ---- cell 8
from PIL import Image

# Load an image
image_path = "example.jpg"

# Run inference
infer_model = model.export(
    runtime_type=RuntimeType.TORCHSCRIPT_32,
    out_dir="./exported_models"
)
detections = infer_model.infer(image_path,threshold=0.5, annotate = True)

# Access results
for detection in detections.detections:
    print(f"Class: {detection.label}, Confidence: {detection.conf}")
    print(f"Bounding box: {detection.bbox}")

print("DOC SCRIPT DONE")
