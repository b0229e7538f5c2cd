"""fai_cls: Focoos' multi-label image classifier (STDC/ResNet backbone + pooled conv head)."""
