"""fai_cls: Focoos' multi-label image classifier (STDC/ResNet backbone + pooled conv head)."""

from focoos.models.family import FamilySpec, register_family
from focoos.ports import ModelInfo


def _outputs(info: ModelInfo) -> dict[str, list[int]]:
    return {"logits": [info.num_classes]}


FAMILY = register_family(FamilySpec(
    name="fai_cls", tasks=("classification",), package=__name__, outputs=_outputs, top_k=None,
    criterion="focoos.training.losses.classification:ClassificationCriterion",
))
