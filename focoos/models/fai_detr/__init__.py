"""FAI-DETR: a real-time detection transformer (RT-DETR style) that exports to ONNX and TensorRT."""
