"""A family declared outside focoos: what a user's own family package looks like (see README,
"Adding a model family"). A tiny detector: pooled pixels -> a few boxes and class scores."""

from focoos.models import FamilySpec, register_family
from focoos.ports import ModelInfo

NUM_QUERIES = 4


def _outputs(info: ModelInfo) -> dict[str, list[int]]:
    queries = int(info.config.get("num_queries") or NUM_QUERIES)
    return {"boxes": [queries, 4], "logits": [queries, info.num_classes]}


FAMILY = register_family(FamilySpec(
    name="toy_detector", tasks=("detection",), package=__name__, outputs=_outputs, top_k=NUM_QUERIES,
))
