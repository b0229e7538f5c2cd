"""Backbone configs in Focoos' modules and names (`focoos.nn.backbone.stdc.STDCConfig`, ...); torch-free.

The networks they describe live in `focoos.models.backbones`.
"""
