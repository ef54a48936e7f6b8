"""torchvision ImageNet classifiers, with weights read from the local torch hub cache only.

Compute nodes have no internet: `torch.hub.load_state_dict_from_url` would try to download, so we resolve the
file ourselves and fail with the command that fetches it (run on a login node).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision
from torch import nn

from bench.models import checksums
from bench.models.backbone import IMAGENET_MEAN, IMAGENET_STD, Backbone, BackboneInfo, WeightsMissing
from bench.models.registry import register_backbone

# registry name -> (torchvision builder, ImageNet weights enum member, dotted path of the final Linear)
TORCHVISION_MODELS = {
    "resnet18": ("resnet18", "ResNet18_Weights.IMAGENET1K_V1", "fc"),
    "resnet50": ("resnet50", "ResNet50_Weights.IMAGENET1K_V1", "fc"),
    "mobilenet_v2": ("mobilenet_v2", "MobileNet_V2_Weights.IMAGENET1K_V1", "classifier.1"),
    "vgg16": ("vgg16", "VGG16_Weights.IMAGENET1K_V1", "classifier.6"),
    "vgg19": ("vgg19", "VGG19_Weights.IMAGENET1K_V1", "classifier.6"),  # thesis Table 5.1
}


def _weights_enum(spec: str):
    enum_name, member = spec.split(".")
    return getattr(getattr(torchvision.models, enum_name), member)


def imagenet_weights_path(name: str) -> Path:
    """Where torch hub caches the weights file for `name` (honours $TORCH_HOME)."""
    url = _weights_enum(TORCHVISION_MODELS[name][1]).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def require_imagenet_weights(name: str) -> Path:
    """The local weights file for `name`, or WeightsMissing naming the command that fetches it."""
    path = imagenet_weights_path(name)
    if not path.is_file():
        raise WeightsMissing(
            f"ImageNet weights for {name} not found at {path}; "
            f"run `reprogbench prepare --weights {name}` on a machine with internet "
            "(or set TORCH_HOME to where they are)"
        )
    return path


def download_imagenet_weights(name: str) -> Path:
    """Login-node step (`reprogbench prepare --weights NAME`): fetch into the hub cache unless already there."""
    path = imagenet_weights_path(name)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        # torchvision names each file <arch>-<first hex digits of its sha256>.pth: torch.hub checks that prefix
        torch.hub.download_url_to_file(_weights_enum(TORCHVISION_MODELS[name][1]).url, str(path),
                                       hash_prefix=published_sha256_prefix(path), progress=True)
    return path


def published_sha256_prefix(path: Path) -> str | None:
    """The sha256 prefix torchvision publishes in the file name (resnet18-f37072fd.pth -> f37072fd)."""
    match = torch.hub.HASH_REGEX.search(path.name)
    return match.group(1) if match else None


def _load_local_state_dict(name: str) -> dict:
    path = require_imagenet_weights(name)
    checksums.check(path, name)  # a truncated or corrupt download is refused with the command that fixes it
    return torch.load(path, map_location="cpu", weights_only=True)


def _split_head(model: nn.Module, head_path: str) -> tuple[nn.Module, nn.Linear]:
    parent_path, _, leaf = head_path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    head = getattr(parent, leaf)
    if isinstance(parent, nn.Sequential):
        parent[int(leaf)] = nn.Identity()
    else:
        setattr(parent, leaf, nn.Identity())
    return model, head


def _register(name: str) -> None:
    builder, _, head_path = TORCHVISION_MODELS[name]
    info = BackboneInfo(
        name, input_size=224, channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD, num_classes=1000,
        weights=("imagenet",), description=f"torchvision {builder}",
    )

    def factory(info: BackboneInfo, weights: str | None) -> Backbone:
        model = getattr(torchvision.models, builder)(weights=None)
        if weights == "imagenet":
            model.load_state_dict(_load_local_state_dict(name))
        body, head = _split_head(model, head_path)
        return Backbone(info, body, head)

    register_backbone(info)(factory)


for _name in TORCHVISION_MODELS:
    _register(_name)
