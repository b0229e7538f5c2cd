"""RTMO: one-stage multi-person keypoint detection (Focoos' `rtmo` family)."""

from focoos.models.family import FamilySpec, register_family
from focoos.ports import ModelInfo


def _outputs(info: ModelInfo) -> dict[str, list[int]]:
    """Rows: the top candidates, as many as the export size has priors up to nms_topk."""
    return {"boxes": [-1, 4], "scores": [-1, info.num_classes], "keypoints": [-1, -1, 3]}


FAMILY = register_family(FamilySpec(
    name="rtmo", tasks=("keypoint",), package=__name__, outputs=_outputs, top_k=100,
    criterion="focoos.training.losses.rtmo:RTMOCriterion",
))
