"""The short names grids have used since before library names: each one is a family name under another name.

`resnet18` is `torchvision:resnet18.IMAGENET1K_V1` (same info, factory and weights file: one code path), but a
grid that says `resnet18` keeps `resnet18` in its cells' specs, so their cell ids do not change
(tests/test_grid_golden.py). The thesis's Table 5.1 substitutes among them are explained in bench.models.thesis_nets.
"""
from __future__ import annotations

from bench.models.registry import register_backbone_alias

SHORT_NAMES = {
    "resnet18": "torchvision:resnet18.IMAGENET1K_V1",
    "resnet50": "torchvision:resnet50.IMAGENET1K_V1",
    # torchvision's second ResNet-50 weights (80.9 top-1, a longer recipe), which ILM-VP and AutoVP reprogram; not
    # `resnet50v2`, the pre-activation ResNet-V2 architecture of the thesis's Keras models
    "resnet50_imagenet1k_v2": "torchvision:resnet50.IMAGENET1K_V2",
    "mobilenet_v2": "torchvision:mobilenet_v2.IMAGENET1K_V1",
    "vgg16": "torchvision:vgg16.IMAGENET1K_V1",
    "vgg19": "torchvision:vgg19.IMAGENET1K_V1",
    "resnet50v2": "timm:resnetv2_50.a1h_in1k",
    "resnet101v2": "timm:resnetv2_101.a1h_in1k",
    "mobilenet_v1": "timm:mobilenetv1_100.ra4_e3600_r224_in1k",
}

for _short, _full in SHORT_NAMES.items():
    register_backbone_alias(_short, _full)
