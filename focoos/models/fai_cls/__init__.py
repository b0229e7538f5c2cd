"""fai_cls: multi-label image classification on a timm backbone."""
