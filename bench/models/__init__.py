"""Backbone registry: `create_backbone(name, weights=..., num_classes=...)` is the one door in; the entry modules
of this package are found by discovery (bench.registry)."""
from bench.models.backbone import Backbone, BackboneInfo, WeightsMissing
from bench.models.registry import BACKBONES, backbone_info, create_backbone, list_backbones

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneInfo",
    "WeightsMissing",
    "backbone_info",
    "create_backbone",
    "list_backbones",
]
