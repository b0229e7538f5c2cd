# ruff: noqa: E402, E501, F401, F811, F821, I001
"""Focoos 0.25 docs/models/{fai_detr,fai_mf,bisenetformer,fai_cls,rtmo}.md, their Python code cells (MIT, FocoosAI).

Changed only where Focoos reaches the internet:
- pretrained registry models (weights on Focoos' servers) -> the bundled digits model of the same task:
  fai-detr-m-coco -> fai-detr-n-digits, fai-mf-l-ade / bisenetformer-m-ade -> bisenetformer-n-digits-sem,
  fai-cls-m-coco -> fai-cls-n-digits; rtmo-s-coco (no bundled keypoint model) runs with random weights.
- backbone configs with `use_pretrained=True` / `pretrained=True` would download ImageNet weights: False here.
- ASSETS_DIR (FOCOOS_ASSETS_DIR) holds local photos named as the pages name them.
- fai_cls.md's second config passes `multi_label=True`, a field Focoos' ClassificationConfig lacks: that cell
  fails in Focoos as well; it is wrapped to show the same TypeError.
"""

import warnings

# ======== docs/models/fai_detr.md
from focoos import ASSETS_DIR, ModelManager
from PIL import Image

# Load a pre-trained model
model = ModelManager.get("fai-detr-n-digits")

# Run inference on an image
image = ASSETS_DIR / "federer.jpg"
result = model.infer(image,threshold=0.5, annotate=True)

# Process results
for detection in result.detections:
    print(f"Class: {detection.label}, Confidence: {detection.conf:.3f}")

# Visualize image
Image.fromarray(result.image)

from focoos.models.fai_detr.config import DETRConfig
from focoos.models.fai_detr.modelling import FAIDetr
from focoos.nn.backbone.stdc import STDCConfig

# Configure the backbone
backbone_config = STDCConfig(
    model_type="stdc",
    use_pretrained=False,
)

# Configure the model
config = DETRConfig(
    backbone_config=backbone_config,
    num_classes=80,
    num_queries=300,
    transformer_predictor_dec_layers=3,
    threshold=0.5,
)

# Create the model
model = FAIDetr(config)

# ======== docs/models/fai_mf.md
from focoos import ASSETS_DIR, ModelManager
from PIL import Image

# Load a pre-trained BisenetFormer model
model = ModelManager.get("bisenetformer-n-digits-sem")

# Run inference on an image
image = ASSETS_DIR / "ADE_val_00000034"
result = model.infer(image,threshold=0.5, annotate=True)

# Process results
for detection in result.detections:
    print(f"Class: {detection.label}, Confidence: {detection.conf:.3f}")

# Visualize image
Image.fromarray(result.image)

from focoos.models.fai_mf.config import MaskFormerConfig
from focoos.models.fai_mf.modelling import FAIMaskFormer
from focoos.nn.backbone.stdc import STDCConfig

# Configure the backbone
backbone_config = STDCConfig(
    model_type="stdc",
    use_pretrained=False,
)

# Configure the model
config = MaskFormerConfig(
    backbone_config=backbone_config,
    num_classes=80,
    num_queries=300,
    transformer_predictor_dec_layers=3,
    threshold=0.5,
)

# Create the model
model = FAIMaskFormer(config)

# ======== docs/models/bisenetformer.md
from focoos import ASSETS_DIR, ModelManager
from PIL import Image

# Load a pre-trained BisenetFormer model
model = ModelManager.get("bisenetformer-n-digits-sem")

# Run inference on an image
image = ASSETS_DIR / "ADE_val_00000034"
result = model.infer(image, threshold=0.5, annotate=True)

# Process results
for detection in result.detections:
    print(f"Class: {detection.label}, Confidence: {detection.conf:.3f}")
# Visualize image
Image.fromarray(result.image)

from focoos.models.bisenetformer.config import BisenetFormerConfig
from focoos.models.bisenetformer.modelling import BisenetFormer
from focoos.nn.backbone.stdc import STDCConfig

# Configure the backbone
backbone_config = STDCConfig(
    model_type="stdc",
    use_pretrained=False,
)

# Configure the BisenetFormer model
config = BisenetFormerConfig(
    backbone_config=backbone_config,
    num_classes=150,  # ADE20K classes
    num_queries=100,
    postprocessing_type="semantic",
    predict_all_pixels=True,  # Better for semantic segmentation
    transformer_predictor_dec_layers=6,
    threshold=0.5,
)

# Create the model
model = BisenetFormer(config)

# ======== docs/models/fai_cls.md
from focoos import ASSETS_DIR, ModelManager
from PIL import Image

# Load a pre-trained model
model = ModelManager.get("fai-cls-n-digits")

image = ASSETS_DIR / "federer.jpg"
result = model.infer(image,threshold=0.5, annotate=True)

# Process results
for detection in result.detections:
    print(f"Class: {detection.label}, Confidence: {detection.conf:.3f}")

# Visualize image
Image.fromarray(result.image)

from focoos.models.fai_cls.config import ClassificationConfig
from focoos.models.fai_cls.modelling import FAIClassification
from focoos.nn.backbone.resnet import ResnetConfig

# Configure with ResNet backbone
backbone_config = ResnetConfig(
    model_type="resnet",
    depth=50,
    pretrained=False,
)

config = ClassificationConfig(
    backbone_config=backbone_config,
    num_classes=1000,  # ImageNet classes
    resolution=224,
    num_layers=2,
    hidden_dim=512,
    dropout_rate=0.2,
)

# Create model
model = FAIClassification(config)

from focoos.models.fai_cls.config import ClassificationConfig
from focoos.models.fai_cls.modelling import FAIClassification
from focoos.nn.backbone.resnet import ResnetConfig

# Configure with ResNet backbone
backbone_config = ResnetConfig(
    model_type="resnet",
    depth=50,
    pretrained=False,
)

# Focoos 0.25's ClassificationConfig has no `multi_label` (its classifier is always multi-label, as ours is):
# this cell of the page raises TypeError in Focoos too, and here.
try:
    config = ClassificationConfig(
        backbone_config=backbone_config,
        num_classes=1000,  # ImageNet classes
        resolution=224,
        num_layers=2,
        hidden_dim=512,
        dropout_rate=0.2,
        multi_label=True,
    )

    # Create model
    model = FAIClassification(config)
except TypeError as exc:
    print("as in Focoos 0.25:", exc)

# ======== docs/models/rtmo.md
from PIL import Image

from focoos import ModelManager, ASSETS_DIR

# Load a pre-trained RTMO model
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # NoWeightsWarning: Focoos' RTMO weights are on its servers
    model = ModelManager.get("rtmo-s-coco")

# Run inference on an image
image = ASSETS_DIR / "federer.jpg"
result = model.infer(image,threshold=0.5, annotate=True)

# Process results
for detection in result.detections:
    print(f"Class: {detection.label}, Confidence: {detection.conf:.3f}")

# Visualize image
Image.fromarray(result.image)

from focoos.models.rtmo.config import RTMOConfig
from focoos.models.rtmo.modelling import RTMO
from focoos.nn.backbone.csp_darknet import CSPConfig

# Configure the backbone
backbone_config = CSPConfig(
    size="small",
    use_pretrained=False,
)

# Configure the RTMO model
config = RTMOConfig(
    backbone_config=backbone_config,
    num_classes=1,  # COCO Person classes
    num_keypoints=17 # Number of keypoints for COCO Person body pose
)

# Create the model
model = RTMO(config)

print("DOC SCRIPT DONE")
