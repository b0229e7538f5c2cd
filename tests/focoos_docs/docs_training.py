# ruff: noqa: E402, E501, F401, F811, F821, I001
"""Focoos 0.25 docs/training.md and tutorials/training.ipynb, their code cells in order (MIT, FocoosAI).

Changed only where Focoos reaches the internet or leaves a blank for the reader:
- the hub is a loopback server: FOCOOS_API_KEY = None reads the key from the environment, as the page says;
  "<YOUR-DATASET-REFERENCE>" / "<YOUR-MODEL-REF>" -> its dataset "digits-ds" and model "digits-detector";
- "fai-detr-l-obj365" -> "fai-detr-n-digits" (Focoos' weights live on its servers);
- the tutorial downloads chess-coco-detection.zip with `download_ext_file(..., skip_if_exists=True)`: a small
  digits dataset under that name is already in DATASETS_DIR, so the unchanged cell finds it.
- training.md's last cell shows `Image.fromarray(detections.image)` for the `outputs` it just computed: the
  page's `detections` is `outputs` (NameError in Focoos too); `random.randint(0, len(ds))` can pass the last
  index (Focoos' off-by-one), so the index is drawn from range(len(ds)).
- FOCOOS_MAX_ITERS / FOCOOS_MAX_BATCH_SIZE cap training, `display` is IPython's.
"""

import random

from _shims import HUB_DATASET_REF, HUB_MODEL_REF, display

# ======== docs/training.md
# ---- cell 0
from focoos import FocoosHUB

FOCOOS_API_KEY = None  # write here your API key
hub = FocoosHUB(api_key=FOCOOS_API_KEY)

# ---- cell 1
dataset_ref = HUB_DATASET_REF
dataset = hub.get_remote_dataset(dataset_ref)
print(dataset)

dataset_path = dataset.download_data()

# ---- cell 2
from focoos.data import AutoDataset,DatasetAugmentations

from focoos import DatasetSplitType

task = dataset.task  # see ports.Task for more information
layout = dataset.layout  # see ports.DatasetLayout for more information
auto_dataset = AutoDataset(dataset_name=dataset_path, task=task, layout=layout)

# Square resolution (512x512)
augs = DatasetAugmentations(resolution=512)

# Non-square resolution (640x480, height x width)
augs = DatasetAugmentations(resolution=(640, 480))

train_dataset = auto_dataset.get_split(augs=augs, split=DatasetSplitType.TRAIN)
valid_dataset = auto_dataset.get_split(augs=augs, split=DatasetSplitType.VAL)

# ---- cell 3
from focoos import ModelManager

model_ref = HUB_MODEL_REF
model = ModelManager.get("hub://" + model_ref, hub=hub)

# ---- cell 4
from focoos import TrainerArgs

args = TrainerArgs(
    run_name=f"{model.name}_{train_dataset.name}",  # the name of the experiment
    output_dir="./experiments",  # the folder where the model is saved, DEFAULT  ~/FocoosAI/models"
    batch_size=16,  # how many images in each iteration
    max_iters=500,  # how many iterations lasts the training
    eval_period=100,  # period after we eval the model on the validation (in iterations)
    learning_rate=0.0001,  # learning rate
    weight_decay=0.0001,  # regularization strenght (set it properly to avoid under/over fitting)
    sync_to_hub=True, # Use this to sync model info, weights and metrics on the platform
)

# ---- cell 5
model.train(args, train_dataset, valid_dataset, hub=hub)

# ---- cell 6
import random
from PIL import Image
from focoos import annotate_image

index = random.choice(range(len(valid_dataset)))

ground_truth = valid_dataset.preview(index, use_augmentations=False).save("ground_truth.jpg")

image = Image.open(valid_dataset[index]["file_name"])
outputs = model.infer(image,annotate=True)

Image.fromarray(outputs.image)

# ======== tutorials/training.ipynb (cell 0, `%pip install`, is the installation)
# ---- cell 1
import os

from focoos import FocoosHUB

FOCOOS_API_KEY = os.getenv(
    "FOCOOS_API_KEY"
)  # write here your API key os set env variable FOCOOS_API_KEY, will be used as default
hub = FocoosHUB(api_key=FOCOOS_API_KEY)

# ---- cell 2
from focoos import ModelRegistry

model_registry = ModelRegistry()

for m in model_registry.list_models():
    model_info = model_registry.get_model_info(m)
    model_info.pprint()

# ---- cell 3
from focoos import ModelManager

model_name = "fai-detr-n-digits"
model = ModelManager.get(model_name)
model.model_info.pprint()

# ---- cell 4
from focoos import DATASETS_DIR, DatasetLayout, Task
from focoos.utils.api_client import ApiClient

ds_task = Task.DETECTION


def get_dataset(task: Task):
    if task == Task.SEMSEG:
        ds_name = "balloons-coco-sem.zip"
        layout = DatasetLayout.ROBOFLOW_SEG
    elif task == Task.DETECTION:
        ds_name = "chess-coco-detection.zip"
        layout = DatasetLayout.ROBOFLOW_COCO
    elif task == Task.INSTANCE_SEGMENTATION:
        ds_name = "fire-coco-instseg.zip"
        layout = DatasetLayout.ROBOFLOW_COCO
    else:
        raise ValueError(f"Error: task {task} not supported")
    url = f"https://public.focoos.ai/datasets/{ds_name}"
    api_client = ApiClient()
    api_client.download_ext_file(url, DATASETS_DIR, skip_if_exists=True)
    return ds_name, layout


# Downlaod sample dataset
ds_name, ds_layout = get_dataset(ds_task)

# ---- cell 5
hub_datasets = hub.list_remote_datasets()
for dataset in hub_datasets:
    print(dataset.ref, dataset.name, dataset.layout, dataset.task)


ref = None  # place here the ref of the dataset you want to download
if ref is not None:
    dataset = hub.get_remote_dataset(ref)
    dataset_path = dataset.download_data()
    ds_name = dataset_path
    ds_layout = dataset.layout
    ds_task = dataset.task

# ---- cell 6
from focoos import DatasetSplitType
from focoos.data.auto_dataset import AutoDataset
from focoos.data.default_aug import DatasetAugmentations

auto_dataset = AutoDataset(dataset_name=ds_name, task=ds_task, layout=ds_layout)

train_augs = DatasetAugmentations(
    resolution=512,
    color_augmentation=1.0,
    horizontal_flip=0.5,
    vertical_flip=0.0,
    rotation=0.0,
    aspect_ratio=0.0,
    scale_ratio=0.0,
    crop=True,
)
valid_augs = DatasetAugmentations(resolution=512)
# Optionally, you can also get the default augmentations for the task
# train_augs, valid_augs = get_default_by_task(task, 512)

train_dataset = auto_dataset.get_split(augs=train_augs, split=DatasetSplitType.TRAIN)
valid_dataset = auto_dataset.get_split(augs=valid_augs, split=DatasetSplitType.VAL)

# ---- cell 7
display(train_dataset.preview())

# ---- cell 8
from focoos import TrainerArgs

args = TrainerArgs(
    run_name=f"{model.name}_{train_dataset.name}",  # the name of the experiment
    output_dir="./experiments",  # the folder where the model is saved, DEFAULT  ~/FocoosAI/models"
    batch_size=16,  # how many images in each iteration
    max_iters=500,  # how many iterations lasts the training
    eval_period=200,  # period after we eval the model on the validation (in iterations)
    learning_rate=0.0001,  # learning rate
    weight_decay=0.0001,  # regularization strenght (set it properly to avoid under/over fitting)
    sync_to_hub=False,
)  # Use this to sync model info, weights and metrics on the platform

# Let's go!
model.train(
    args, train_dataset, valid_dataset, hub=None
)  # Hub is optional, if not provided and sync_to_hub is True, will be created automatically

# ---- cell 9
import random

from PIL import Image

index = random.choice(range(len(valid_dataset)))

print("Ground truth:")
display(valid_dataset.preview(index, use_augmentations=False))

image = Image.open(valid_dataset[index]["file_name"])
outputs = model.infer(image, annotate=True)

print("Prediction:")
display(Image.fromarray(outputs.image))

# ---- cell 10
from focoos import RuntimeType

infer_model = model.export(runtime_type=RuntimeType.TORCHSCRIPT_32)

infer_model.benchmark(iterations=10)
detections = infer_model.infer(image, threshold=0.5)

print("DOC SCRIPT DONE")
