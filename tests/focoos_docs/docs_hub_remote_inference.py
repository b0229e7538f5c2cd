# ruff: noqa: E402, E501, F401, F811, F821, I001
"""Focoos 0.25 docs/hub/remote_inference.md, its code cells in order (MIT, FocoosAI).

Not run by tests/test_focoos_docs.py: every cell calls RemoteModel.infer, the hub's cloud inference, which this
package does not implement (it raises HubError pointing to `ModelManager.get("hub://<ref>")` and local infer).
Kept so the page's code is on record; placeholders as in docs_hub.py.
"""

from _shims import HUB_MODEL_REF

from focoos import FocoosHUB, ModelStatus

# Initialize the HUB client
hub = FocoosHUB()

# Get a remote model instance
model_ref = HUB_MODEL_REF  # Use any available model
remote_model = hub.get_remote_model(model_ref)

# Perform inference
results = remote_model.infer("image.jpg", threshold=0.5)

# Process results
for detection in results.detections:
    print(f"Class ID: {detection.cls_id}")
    print(f"Confidence: {detection.conf:.3f}")
    print(f"Bounding Box: {detection.bbox}")

# This is equivalent to calling remote_model.infer()
results = remote_model.infer("image.jpg", threshold=0.5)

results = remote_model.infer("photo.jpg")

import cv2
import numpy as np

# Load image as numpy array
image = cv2.imread("photo.jpg")
results = remote_model.infer(image, threshold=0.3)

from PIL import Image

# Load with PIL
pil_image = Image.open("photo.jpg")
results = remote_model.infer(pil_image)

# Image as bytes
with open("photo.jpg", "rb") as f:
    image_bytes = f.read()

results = remote_model.infer(image_bytes)

model_info = remote_model.get_info()

if model_info.status == ModelStatus.TRAINING_COMPLETED:
    print("Model is ready for inference")
    results = remote_model.infer("image.jpg")
elif model_info.status == ModelStatus.TRAINING_RUNNING:
    print("Model is still training")
elif model_info.status == ModelStatus.TRAINING_ERROR:
    print("Model has an error")

print("DOC SCRIPT DONE")
