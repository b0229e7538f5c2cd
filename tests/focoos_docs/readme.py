# ruff: noqa: E402, E501, F401, F811, F821, I001
"""Focoos 0.25 README.md, its Python code cells in order (MIT, FocoosAI).

Changed only where Focoos reaches the internet (run by tests/test_focoos_docs.py):
- "fai-detr-l-obj365" -> "fai-detr-n-digits": Focoos' weights live on its servers; the bundled digits detector
  ships with this package.
- the motogp.jpg URL -> "motogp.jpg", a local photo in the working folder.
- "my_dataset.zip" is a small digits dataset in FOCOOS_DATASETS_DIR; FOCOOS_MAX_ITERS caps max_iters.
"""

# ## Inference
from focoos import ModelManager

im = "motogp.jpg" # can be local/remote path, np.array, PIL image

model = ModelManager.get("fai-detr-n-digits") # any models from ModelRegistry, FocoosHub or local folder

detections = model.infer(im,annotate=True)

# ## Training
from focoos import DatasetLayout, DatasetSplitType, ModelManager, RuntimeType, Task, TrainerArgs
from focoos.data import AutoDataset, get_default_by_task

ds_name = "my_dataset.zip"
task = Task.DETECTION
layout = DatasetLayout.ROBOFLOW_COCO

auto_dataset = AutoDataset(dataset_name=ds_name, task=task, layout=layout)

train_augs, val_augs = get_default_by_task(task, 640, advanced=False)
train_dataset = auto_dataset.get_split(augs=train_augs, split=DatasetSplitType.TRAIN)
valid_dataset = auto_dataset.get_split(augs=val_augs, split=DatasetSplitType.VAL)


model = ModelManager.get("fai-detr-n-digits")

args = TrainerArgs(
    run_name=f"{model.name}_{train_dataset.name}",
    batch_size=16,
    max_iters=50,
    eval_period=50,
    learning_rate=0.0008,
    sync_to_hub=False,  # use this to sync model info, weights and metrics on the hub
)


model.train(args, train_dataset, valid_dataset)

# if you want to do only evaluation

model.eval(args, valid_dataset)

# ## Export and benchmark
from focoos import ModelManager, RuntimeType

model = ModelManager.get("fai-detr-n-digits")
infer_model = model.export(runtime_type=RuntimeType.TORCHSCRIPT_32)
infer_model.benchmark()

print("DOC SCRIPT DONE")
