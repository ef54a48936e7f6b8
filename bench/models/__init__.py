"""Backbone registry: `create_backbone(name, weights=..., num_classes=...)` is the one door in."""
# importing the entry modules registers them
from bench.models import smallcnn as _smallcnn  # noqa: F401,E402
from bench.models import thesis_nets as _thesis_nets  # noqa: F401,E402
from bench.models import torchvision_nets as _torchvision_nets  # noqa: F401,E402
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
