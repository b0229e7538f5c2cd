# ruff: noqa: B018, E402, E501, F401, F811, F821, I001, SIM115
"""Focoos 0.25 docs/hub/index.md, docs/hub/hub.md and tutorials/hub.ipynb, their code cells in order (MIT, FocoosAI).

The hub is a loopback server holding one user, the model "digits-detector" and the dataset "digits-ds"
(tests/test_focoos_docs.py). Changed only where Focoos reaches the internet or leaves a blank for the reader:
- "your-api-key-here" -> the loopback hub's key; "your-model-reference", "training-model-ref" -> its model;
  "your-dataset-reference" -> its dataset; the tutorial's sample-image URL -> a local photo.
- "fai-detr-l-obj365" -> "fai-detr-n-digits" (Focoos' weights live on its servers); the training cell's
  `train_dataset`, `val_dataset` (which the page leaves to the reader) -> the hub dataset's splits.
- Not run: hub.md's cell 4 and the tutorial's remote inference (RemoteModel.infer, the hub's cloud inference,
  is not implemented here). Two attribute reads of the page fail in Focoos 0.25 as well and are shown so:
  `model_info.training` (RemoteModelInfo's field is `training_info`) and `metrics.map` (Metrics has no `map`).
"""

from _shims import API_KEY, HUB_DATASET_REF, HUB_MODEL_REF

# ======== docs/hub/index.md
from focoos import FocoosHUB

# Initialize the HUB client
hub = FocoosHUB()

# Get user information
user_info = hub.get_user_info()
print(f"Welcome {user_info.email}!")

# ======== docs/hub/hub.md
# ---- cell 0
from focoos import FocoosHUB

# Option 1: Use API key from configuration
hub = FocoosHUB()

# Option 2: Explicitly provide API key
hub = FocoosHUB(api_key=API_KEY)

# ---- cell 1
user_info = hub.get_user_info()

print(f"Email: {user_info.email}")
print(f"Company: {user_info.company}")
print(f"Storage used: {user_info.quotas.used_storage_gb}GB")
print(f"Inferences used: {user_info.quotas.total_inferences}")

# ---- cell 2
models = hub.list_remote_models()

for model in models:
    print(f"Model: {model.name}")
    print(f"  - Reference: {model.ref}")
    print(f"  - Task: {model.task}")
    print(f"  - Status: {model.status}")
    print(f"  - Created: {getattr(model, 'created_at', None)}")  # ModelPreview has no created_at, in Focoos too

# ---- cell 3
model_ref = HUB_MODEL_REF
model_info = hub.get_model_info(model_ref)

print(f"Model Name: {model_info.name}")
print(f"Description: {model_info.description}")
print(f"Task: {model_info.task}")
print(f"Classes: {model_info.classes}")
print(f"Image Size: {model_info.im_size}")
print(f"Status: {model_info.status}")

# Access training information if available
if getattr(model_info, "training", None):  # the page reads model_info.training: AttributeError in Focoos too
    print(f"Training Status: {model_info.training.status}")
    print(f"Training Progress: {model_info.training.progress}%")

# ---- cell 4 (remote inference and metrics.map: see the docstring)
model_ref = HUB_MODEL_REF
remote_model = hub.get_remote_model(model_ref)

# Get model training information
training_info = remote_model.train_info()
print(f"Training status: {training_info.main_status if training_info else None}")

# Get model metrics
metrics = remote_model.metrics()
print(f"Validation metrics: {metrics.valid_metrics}")

# ---- cell 5
# List only your datasets
my_datasets = hub.list_remote_datasets()

# List your datasets and shared datasets
all_datasets = hub.list_remote_datasets(include_shared=True)

for dataset in all_datasets:
    print(f"Dataset: {dataset.name}")
    print(f"  - Reference: {dataset.ref}")
    print(f"  - Task: {dataset.task}")
    print(f"  - Layout: {dataset.layout}")
    if dataset.spec:
        print(f"  - spec.train_length: {dataset.spec.train_length}")
        print(f"  - spec.valid_length: {dataset.spec.valid_length}")
        print(f"  - spec.size_mb: {dataset.spec.size_mb}")

# ---- cell 6
dataset_ref = HUB_DATASET_REF
remote_dataset = hub.get_remote_dataset(dataset_ref)

print(f"Dataset Name: {remote_dataset.name}")
print(f"Task: {remote_dataset.task}")
print(f"Layout: {remote_dataset.layout}")

# Download dataset data
local_path = remote_dataset.download_data("./datasets")
print(f"Dataset downloaded to: {local_path}")

# ---- cell 7
try:
    model_info = hub.get_model_info("non-existent-model")
except ValueError as e:
    print(f"Error retrieving model: {e}")

try:
    models = hub.list_remote_models()
except ValueError as e:
    print(f"Error listing models: {e}")

# ---- cell 8
from focoos import FOCOOS_CONFIG

# Check current configuration
print(f"API Key: {FOCOOS_CONFIG.focoos_api_key}")
print(f"Log Level: {FOCOOS_CONFIG.focoos_log_level}")
print(f"Runtime type: {FOCOOS_CONFIG.runtime_type}")
print(f"Warmup iter: {FOCOOS_CONFIG.warmup_iter}")

# The HUB client will use these values by default
hub = FocoosHUB()  # Uses FOCOOS_CONFIG values

# ---- cell 9
from focoos import DatasetSplitType
from focoos.data import AutoDataset, get_default_by_task

import os

auto_dataset = AutoDataset(dataset_name=os.path.abspath(local_path), task=remote_dataset.task, layout=remote_dataset.layout)
train_augs, val_augs = get_default_by_task(remote_dataset.task, 256)
train_dataset = auto_dataset.get_split(augs=train_augs, split=DatasetSplitType.TRAIN)
val_dataset = auto_dataset.get_split(augs=val_augs, split=DatasetSplitType.VAL)

from focoos.models.focoos_model import FocoosModel
from focoos.ports import TrainerArgs
from focoos import ModelManager

# Load a model for training
model = ModelManager.get("fai-detr-n-digits")

# Configure training with HUB sync
train_args = TrainerArgs(
    run_name="hub-synced-run",  # the page leaves run_name out; TrainerArgs requires it, in Focoos too
    max_iters=1000,
    batch_size=16,
    sync_to_hub=True  # This will automatically create a remote model
)

# Train the model (this will sync to HUB)
model.train(train_args, train_dataset, val_dataset, hub=hub)

# ---- cell 10
remote_model = hub.get_remote_model(HUB_MODEL_REF)

# Get training info
training_info = remote_model.train_info()

if training_info:
    print(f"Algorithm Name: {training_info.algorithm_name}")
    print(f"Instance Device: {training_info.instance_device}")
    print(f"Instance Type: {training_info.instance_type}")
    print(f"Volume Size: {training_info.volume_size}")
    print(f"Main Status: {training_info.main_status}")
    print(f"Failure Reason: {training_info.failure_reason}")
    print(f"Status Transitions: {training_info.status_transitions}")
    print(f"Start Time: {training_info.start_time}")
    print(f"End Time: {training_info.end_time}")
    print(f"Artifact Location: {training_info.artifact_location}")

# Get training logs
logs = remote_model.train_logs()
for log_entry in logs:
    print(log_entry)

# ======== tutorials/hub.ipynb (cell 0, `%pip install`, is the installation)
# ---- cell 1
import os

API_KEY = os.getenv(
    "FOCOOS_API_KEY"
)  # write here your API key os set env variable FOCOOS_API_KEY, will be load from env if not provided

# ---- cell 2
from focoos import FocoosHUB

hub = FocoosHUB(api_key=API_KEY)
user_info = hub.get_user_info()
user_info

# ---- cell 3
from focoos import FocoosHUB

hub = FocoosHUB()
models = hub.list_remote_models()
models

# ---- cell 4
from focoos import FocoosHUB

hub = FocoosHUB()
datasets = hub.list_remote_datasets(include_shared=True)
datasets

# ---- cell 5
from focoos import FocoosHUB

model_ref = None  # place here the ref of the model you want to retrieve

hub = FocoosHUB()
if model_ref is not None:
    model_info = hub.get_model_info(model_ref)

# ---- cell 6
from io import BytesIO

from PIL import Image

from focoos import FocoosHUB

model_ref = None  # place here the ref of the model you want to retrieve

image = Image.open(BytesIO(open("image.jpg", "rb").read()))

hub = FocoosHUB()
if model_ref is not None:
    model = hub.get_remote_model(model_ref)
    results = model.infer(image=image, threshold=0.5, annotate=True)

    Image.fromarray(results.image)

# ---- cell 7
from focoos import DatasetSplitType, FocoosHUB, ModelManager, TrainerArgs
from focoos.data.auto_dataset import AutoDataset
from focoos.data.default_aug import get_default_by_task

remote_dataset_ref = None  # place here the ref of the dataset you want to download

hub = FocoosHUB()
if remote_dataset_ref is not None:
    my_datasets = hub.list_remote_datasets(include_shared=False)
    remote_dataset = hub.get_remote_dataset(remote_dataset_ref)
    dataset_path = remote_dataset.download_data()
    auto_dataset = AutoDataset(dataset_name=dataset_path, task=remote_dataset.task, layout=remote_dataset.layout)

    train_augs, val_augs = get_default_by_task(remote_dataset.task, 640, advanced=False)
    train_dataset = auto_dataset.get_split(augs=train_augs, split=DatasetSplitType.TRAIN)
    valid_dataset = auto_dataset.get_split(augs=val_augs, split=DatasetSplitType.VAL)

    model = ModelManager.get("fai-detr-n-digits")

    args = TrainerArgs(
        run_name=f"{model.name}_{train_dataset.name}",
        output_dir="./experiments",
        amp_enabled=True,
        batch_size=16,
        max_iters=500,
        eval_period=50,
        learning_rate=0.0008,
        scheduler="MULTISTEP",
        weight_decay=0.02,
        workers=16,
        patience=1,
        sync_to_hub=True,  # use this to sync model info, weights and metrics on the hub
    )

    model.train(
        args, train_dataset, valid_dataset, hub=hub
    )  # Hub is optional, if not provided and sync_to_hub is True, will be created automatically

print("DOC SCRIPT DONE")
