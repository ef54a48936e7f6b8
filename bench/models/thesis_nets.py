"""The thesis's Table 5.1 backbones: eight Keras ImageNet models, each mapped to the closest PyTorch ImageNet-1k model.

`THESIS_BACKBONES` is the table the grids and docs use (Keras name -> our registry name or None, and why).
torchvision has MobileNetV2 / VGG16 (registered in torchvision_nets) and VGG19 (registered here); timm has the
pre-activation ResNets (ResNetV2) and MobileNet v1. ResNet152V2 and NASNetMobile have no ImageNet-1k PyTorch
equivalent in either library and are not substituted. docs/backbones.md explains each mapping.

Weights are read from local disk only (compute nodes have no internet), through one interface for every backbone
with ImageNet weights, torchvision or timm: `weights_path(name)` (the local file, or WeightsMissing naming
`reprogbench prepare --weights NAME`), `weights_present(name)`, and `download_weights(name)` (the login-node step).
torchvision files live in the torch hub cache ($TORCH_HOME), timm files in the Hugging Face hub cache ($HF_HOME,
$HF_HUB_CACHE), where `timm.create_model(..., pretrained=True)` on a machine with internet would also put them;
loading hands timm that local file (`pretrained_cfg_overlay=dict(file=...)`), so timm never contacts the hub.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bench.models import checksums
from bench.models.backbone import Backbone, BackboneInfo, WeightsMissing
from bench.models.registry import register_backbone
from bench.models.torchvision_nets import (
    TORCHVISION_MODELS,
    _weights_enum,
    download_imagenet_weights,
    require_imagenet_weights,
)
from bench.registry import UnknownName

INCEPTION_MEAN = (0.5, 0.5, 0.5)  # x in [0, 1] -> [-1, 1]: Keras's "tf" preprocessing mode, and timm's for these
INCEPTION_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class TimmSpec:
    """A timm model with ImageNet-1k weights, and the preprocessing its weights were trained with.

    The constants copy the tag's `pretrained_cfg` (tests check they agree), so registering needs no timm import.
    """

    tag: str  # timm `model.pretrained_tag`; its weights are the Hugging Face hub repo timm/<tag>
    keras: str
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str  # of timm's eval transform (resize, centre crop by crop_pct); recorded, not applied here
    crop_pct: float

    @property
    def hf_repo(self) -> str:
        return f"timm/{self.tag}"


# registry name -> timm model
TIMM_MODELS = {
    "resnet50v2": TimmSpec("resnetv2_50.a1h_in1k", "ResNet50V2", 224, INCEPTION_MEAN, INCEPTION_STD, "bicubic", 0.95),
    "resnet101v2": TimmSpec("resnetv2_101.a1h_in1k", "ResNet101V2", 224, INCEPTION_MEAN, INCEPTION_STD, "bicubic",
                            0.95),
    "mobilenet_v1": TimmSpec("mobilenetv1_100.ra4_e3600_r224_in1k", "MobileNet", 224, INCEPTION_MEAN, INCEPTION_STD,
                             "bicubic", 0.875),
}

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

_HF_FILES = ("model.safetensors", "pytorch_model.bin")  # what timm looks for in a hub repo, in its order


# --------------------------------------------------------------------------- where weights live


def weights_names() -> list[str]:
    """Every backbone with ImageNet weights that `download_weights` can fetch."""
    return sorted({*TORCHVISION_MODELS, *TIMM_MODELS})


def _check_name(name: str) -> None:
    if name not in weights_names():
        raise UnknownName(f"no downloadable weights for {name!r}; known: {', '.join(weights_names())}")


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, resolved from the environment now (huggingface_hub reads it once, at import)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def _timm_cached_file(name: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache  # a file-system lookup: never touches the network

    for filename in _HF_FILES:
        found = try_to_load_from_cache(TIMM_MODELS[name].hf_repo, filename, cache_dir=hf_hub_cache())
        if isinstance(found, str):  # not None, not the cached "does not exist" marker
            return Path(found)
    return None


def weights_source(name: str) -> str:
    """Where `download_weights` fetches `name` from, in words."""
    _check_name(name)
    if name in TIMM_MODELS:
        return f"Hugging Face hub {TIMM_MODELS[name].hf_repo}"
    return _weights_enum(TORCHVISION_MODELS[name][1]).url


def weights_path(name: str) -> Path:
    """The local ImageNet weights file for `name`, or WeightsMissing naming the command that fetches it."""
    _check_name(name)
    if name in TIMM_MODELS:
        path = _timm_cached_file(name)
        if path is None:
            raise WeightsMissing(
                f"ImageNet weights for {name} ({weights_source(name)}) not found in the Hugging Face cache "
                f"{hf_hub_cache()}; run `reprogbench prepare --weights {name}` on a machine with internet "
                "(or set HF_HOME / HF_HUB_CACHE to where they are)"
            )
        return path
    return require_imagenet_weights(name)


def weights_present(name: str) -> bool:
    try:
        weights_path(name)
    except WeightsMissing:
        return False
    return True


def download_weights(name: str) -> Path:
    """Login-node step (`reprogbench prepare --weights NAME`): fetch into the local cache unless already there."""
    _check_name(name)
    if weights_present(name):
        return weights_path(name)
    if name in TORCHVISION_MODELS:
        return download_imagenet_weights(name)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

    repo = TIMM_MODELS[name].hf_repo
    for filename in _HF_FILES:
        try:
            return Path(hf_hub_download(repo, filename, cache_dir=hf_hub_cache()))
        except EntryNotFoundError as e:  # the repo lacks this file: try the next, as timm does
            if isinstance(e, LocalEntryNotFoundError):
                raise
    raise FileNotFoundError(f"Hugging Face hub repo {repo} has none of {', '.join(_HF_FILES)}")


WEIGHTS_ENV = "REPROGBENCH_WEIGHTS"


def use_weights_dir(folder: str | Path) -> None:
    """Keep every weights file under `folder` (torchvision's in folder/torch, timm's in folder/huggingface/hub).

    The same folder given to `prepare` on a login node and to `run` on compute nodes (or exported as
    $REPROGBENCH_WEIGHTS, which Slurm jobs inherit) is all a shared filesystem needs.
    """
    folder = Path(folder).expanduser().resolve()
    os.environ[WEIGHTS_ENV] = str(folder)
    os.environ["TORCH_HOME"] = str(folder / "torch")  # torch.hub.get_dir() reads it on every call
    os.environ["HF_HUB_CACHE"] = str(folder / "huggingface" / "hub")  # hf_hub_cache() reads it on every call


def verify_weights(name: str) -> str:
    """Check the local file of `name` against the checksum its source publishes (`bench.models.checksums`); one line
    saying what was checked. Raises WeightsCorrupt (a ValueError) on a mismatch: a truncated or corrupt download."""
    return checksums.check(weights_path(name), name)


# --------------------------------------------------------------------------- models


def timm_split(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """A timm classifier -> (body giving pooled penultimate features, Linear head) with body+head == model."""
    classifier = model.get_classifier()
    if isinstance(classifier, nn.Conv2d):  # ResNetV2: a 1x1 conv on the pooled (N, C, 1, 1) map is a Linear
        if classifier.kernel_size != (1, 1) or classifier.groups != 1:
            raise TypeError(f"cannot turn classifier {classifier} into a Linear")
        w = classifier.weight
        head = nn.Linear(w.shape[1], w.shape[0], bias=classifier.bias is not None, device=w.device, dtype=w.dtype)
        with torch.no_grad():
            head.weight.copy_(classifier.weight.flatten(1))
            if classifier.bias is not None:
                head.bias.copy_(classifier.bias)
    elif isinstance(classifier, nn.Linear):
        head = classifier
    else:
        raise TypeError(f"unexpected timm classifier {type(classifier).__name__}")
    model.reset_classifier(0)  # keeps the pooling (and anything between it and the classifier), drops the classifier
    return model, head


def _register_timm(name: str) -> None:
    spec = TIMM_MODELS[name]
    info = BackboneInfo(
        name, input_size=spec.input_size, channels=3, mean=spec.mean, std=spec.std, num_classes=1000,
        weights=("imagenet",), description=f"timm {spec.tag} (Keras {spec.keras})",
    )

    def factory(info: BackboneInfo, weights: str | None) -> Backbone:
        import timm  # only when a timm backbone is built: registering costs no timm import

        if weights == "imagenet":
            # the local file, or WeightsMissing before anything is built; timm loads it with its own filters
            path = weights_path(name)
            checksums.check(path, name)
            overlay = {"file": str(path)}
            model = timm.create_model(spec.tag, pretrained=True, pretrained_cfg_overlay=overlay)
        else:
            model = timm.create_model(spec.tag, pretrained=False)
        body, head = timm_split(model)
        return Backbone(info, body, head)

    register_backbone(info)(factory)


for _name in TIMM_MODELS:
    _register_timm(_name)
