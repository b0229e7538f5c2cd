"""FAI-DETR: a real-time detection transformer (RT-DETR style) that exports to ONNX and TensorRT."""

from focoos.models.fai_detr.config import DETRConfig
from focoos.models.family import FamilySpec, register_family
from focoos.ports import ModelInfo

DEFAULTS = DETRConfig.defaults()  # Focoos' defaults, JSON form
NUM_QUERIES = DEFAULTS["num_queries"]


def _outputs(info: ModelInfo) -> dict[str, list[int]]:
    queries = int(info.config.get("num_queries") or NUM_QUERIES)
    return {"boxes": [queries, 4], "logits": [queries, info.num_classes]}


FAMILY = register_family(FamilySpec(
    name="fai_detr", tasks=("detection",), package=__name__, outputs=_outputs, top_k=DEFAULTS["top_k"],
    criterion="focoos.training.losses.detr:DetrCriterion",
))
