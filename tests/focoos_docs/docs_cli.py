# ruff: noqa: E402, E501, F401, F811, F821, I001
"""Focoos 0.25 docs/cli.md, its Python code cell (the programmatic CLI, focoos.cli.commands) (MIT, FocoosAI).

Changed only where Focoos reaches the internet: "fai-detr-m-coco" -> "fai-detr-n-digits" (Focoos' weights live on
its servers); "mydataset.zip" is a small digits dataset in FOCOOS_DATASETS_DIR and "image.jpg" a local photo.
FOCOOS_MAX_ITERS / FOCOOS_MAX_BATCH_SIZE cap the two trainings.
"""

from focoos.cli.commands import train_command, predict_command, export_command

# Train a model (square image)
train_command(
    model_name="fai-detr-n-digits",
    dataset_name="mydataset.zip",
    dataset_layout="roboflow_coco",
    im_size=640,
    run_name="my_training",
    max_iters=5000,
    batch_size=16
)

# Train a model with non-square resolution
train_command(
    model_name="fai-detr-n-digits",
    dataset_name="mydataset.zip",
    dataset_layout="roboflow_coco",
    im_size=(640, 480),  # (height, width)
    run_name="my_training",
    max_iters=5000,
    batch_size=16
)

# Run inference
results = predict_command(
    model_name="fai-detr-n-digits",
    source="image.jpg",
    conf=0.5,
    save=True
)

# Export model
export_path = export_command(
    model_name="fai-detr-n-digits",
    format="onnx",
    device="cuda"
)

print("DOC SCRIPT DONE")
