"""FAI-MF: MaskFormer-style instance and semantic segmentation (masked-attention query decoder)."""

from focoos.models.fai_mf.config import MaskFormerConfig
from focoos.models.family import FamilySpec, mask_head_outputs, register_family

DEFAULTS = MaskFormerConfig.defaults()  # Focoos' defaults, JSON form
NUM_QUERIES = DEFAULTS["num_queries"]

FAMILY = register_family(FamilySpec(
    name="fai_mf", tasks=("instseg", "semseg"), package=__name__, outputs=mask_head_outputs(NUM_QUERIES),
    top_k=DEFAULTS["top_k"],
    native_size=True, criterion="focoos.training.losses.maskformer:MaskFormerCriterion",
))
