"""BiSeNetFormer: two-path real-time semantic segmentation with a MaskFormer query head."""

from focoos.models.bisenetformer.config import BisenetFormerConfig
from focoos.models.family import FamilySpec, mask_head_outputs, register_family

DEFAULTS = BisenetFormerConfig.defaults()  # Focoos' defaults, JSON form
NUM_QUERIES = DEFAULTS["num_queries"]

FAMILY = register_family(FamilySpec(
    name="bisenetformer", tasks=("semseg",), package=__name__, outputs=mask_head_outputs(NUM_QUERIES),
    top_k=DEFAULTS["top_k"],
    native_size=True, criterion="focoos.training.losses.maskformer:MaskFormerCriterion",
))
