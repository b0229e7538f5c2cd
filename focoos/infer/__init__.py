"""Local inference: the shared pipeline, ONNX Runtime / TorchScript runtimes, InferModel, export."""
