"""FAI-MF: MaskFormer-style instance and semantic segmentation (masked-attention query decoder)."""
