"""FAI-MF: MaskFormer-style instance and semantic segmentation (masked-attention query decoder)."""

from focoos.models.family import FamilySpec, mask_head_outputs, register_family

NUM_QUERIES = 100  # Focoos' MaskFormerConfig.num_queries

FAMILY = register_family(FamilySpec(
    name="fai_mf", tasks=("instseg", "semseg"), package=__name__, outputs=mask_head_outputs(NUM_QUERIES), top_k=100,
    native_size=True, criterion="focoos.training.losses.maskformer:MaskFormerCriterion",
))
