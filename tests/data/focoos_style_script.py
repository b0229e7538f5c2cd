"""A script written for Focoos 0.25, run here unchanged (tests/test_focoos_script.py).

It expects FOCOOS_API_KEY and DEFAULT_HOST_URL (the hub), a dataset zip `digits.zip` in the
datasets folder and a hub model `digits-detector` with a dataset `digits-ds`.
"""

from focoos import DatasetLayout, DatasetSplitType, FocoosHUB, ModelManager, RuntimeType, Task, TrainerArgs
from focoos.data import AutoDataset, get_default_by_task

# -- inference
model = ModelManager.get("fai-detr-n-digits")
im = "image.jpg"
detections = model.infer(im, threshold=0.5, annotate=True)
detections.pprint()
print("infer seconds", detections.latency.inference)

# -- export, benchmark and optimized inference
infer_model = model.export(runtime_type=RuntimeType.TORCHSCRIPT_32)
print(infer_model.benchmark(iterations=3))
exported = infer_model.infer(im, threshold=0.5)
print("exported detections", len(exported.detections))

# -- training on a local dataset zip
auto_dataset = AutoDataset(dataset_name="digits.zip", task=Task.DETECTION, layout=DatasetLayout.ROBOFLOW_COCO)
train_augs, val_augs = get_default_by_task(Task.DETECTION, 128, advanced=False)
train_dataset = auto_dataset.get_split(augs=train_augs, split=DatasetSplitType.TRAIN)
valid_dataset = auto_dataset.get_split(augs=val_augs, split=DatasetSplitType.VAL)

args = TrainerArgs(
    run_name=f"{model.name}_{train_dataset.name}",
    batch_size=4,
    max_iters=3,
    eval_period=3,
    learning_rate=0.0001,
    workers=0,
    sync_to_hub=False,
)
model.train(args, train_dataset, valid_dataset)
metrics = model.eval(args, valid_dataset)
print("eval bbox/AP", metrics["bbox/AP"])

# the trained run loads back by its name from the models folder
trained = ModelManager.get(args.run_name)
print("reloaded", trained.name, trained.classes[:3])

# -- the hub
hub = FocoosHUB()
print("user", hub.get_user_info().email)
for remote in hub.list_remote_models():
    print("remote model", remote.ref, remote.name)
dataset = hub.get_remote_dataset("digits-ds")
dataset_path = dataset.download_data()
hub_dataset = AutoDataset(dataset_name=dataset_path, task=dataset.task, layout=dataset.layout)
print("hub dataset train images", len(hub_dataset.get_split(augs=train_augs, split=DatasetSplitType.TRAIN)))

hub_model = ModelManager.get("hub://digits-detector", hub=hub)
hub_detections = hub_model.infer(im, threshold=0.5)
print("hub model detections", len(hub_detections.detections))
print("script done")
