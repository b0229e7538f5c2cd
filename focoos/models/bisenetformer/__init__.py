"""BiSeNetFormer: two-path real-time semantic segmentation with a MaskFormer query head."""
