"""The thesis's Table 5.1 backbones: eight Keras ImageNet models, each mapped to the closest PyTorch ImageNet-1k model.

`THESIS_BACKBONES` is the table the grids and docs use (Keras name -> our short name or None, and why). The short
names are aliases of library names (bench.models.aliases): torchvision has MobileNetV2, VGG16 and VGG19; timm has
the pre-activation ResNets (ResNetV2) and MobileNet v1. ResNet152V2 and NASNetMobile have no ImageNet-1k PyTorch
equivalent in either library and are not substituted. docs/backbones.md explains each mapping.
"""
from __future__ import annotations

# Keras name (thesis Table 5.1) -> (our registry name, or None where PyTorch has no ImageNet-1k equivalent; note)
THESIS_BACKBONES: dict[str, tuple[str | None, str]] = {
    "ResNet50V2": ("resnet50v2", "timm resnetv2_50.a1h_in1k: same pre-activation ResNet-50; timm's RSB A1h recipe, "
                   "not the Keras weights"),
    "ResNet101V2": ("resnet101v2", "timm resnetv2_101.a1h_in1k: same pre-activation ResNet-101; timm's RSB A1h "
                    "recipe, not the Keras weights"),
    "ResNet152V2": (None, "no ImageNet-1k pre-activation ResNet-152 in timm or torchvision (timm's resnetv2_152 has "
                    "no weights; resnetv2_152x2_bit is 2x wide, GroupNorm, ImageNet-21k pretrained); not substituted"),
    "MobileNet": ("mobilenet_v1", "timm mobilenetv1_100.ra4_e3600_r224_in1k: MobileNet v1, alpha 1.0, 224px; "
                  "timm's ra4 recipe, not the Keras weights"),
    "MobileNetV2": ("mobilenet_v2", "torchvision mobilenet_v2 IMAGENET1K_V1 (alpha 1.0, 224px)"),
    "NASNetMobile": (None, "no NASNet-A Mobile with ImageNet weights in timm or torchvision (timm has only "
                     "nasnetalarge / pnasnet5large); not substituted"),
    "VGG16": ("vgg16", "torchvision vgg16 IMAGENET1K_V1 (no BatchNorm, as Keras)"),
    "VGG19": ("vgg19", "torchvision vgg19 IMAGENET1K_V1 (no BatchNorm, as Keras)"),
}
