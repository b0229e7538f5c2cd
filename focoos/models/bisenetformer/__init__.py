"""BiSeNetFormer: two-path real-time semantic segmentation with a MaskFormer query head."""

from focoos.models.family import FamilySpec, mask_head_outputs, register_family

NUM_QUERIES = 100  # Focoos' BisenetFormerConfig.num_queries

FAMILY = register_family(FamilySpec(
    name="bisenetformer", tasks=("semseg",), package=__name__, outputs=mask_head_outputs(NUM_QUERIES), top_k=300,
    native_size=True, criterion="focoos.training.losses.maskformer:MaskFormerCriterion",
))
