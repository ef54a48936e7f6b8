"""`timm:<model>.<tag>`: every timm classifier with pretrained weights, by timm's own name (`timm.list_pretrained()`).

Everything a `BackboneInfo` says (input size, mean/std, classes) is read from the tag's `pretrained_cfg`. Its
weights are the Hugging Face hub file `timm.create_model(..., pretrained=True)` would fetch (`hf_hub_id`), in the
hub cache (or, for the few tags not on the hub, the torch hub cache file of its `url`); loading hands timm that
local file (`pretrained_cfg_overlay=dict(file=...)`, timm's own filters apply), so timm never contacts the hub.

An ImageNet-1k classifier's weights are named `imagenet`, as a grid writes them; another tag's by its dataset
(`vit_base_patch16_224.augreg_in21k`: `in21k`). A tag without a classifier (num_classes 0) is refused.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from bench.models.backbone import Backbone, BackboneInfo
from bench.models.registry import BackboneFamily, Factory, register_backbone_family
from bench.models.weights import WeightsFile, verified_weights_path
from bench.models.weights_caches import HF_FILES, HubFile, TorchHubFile
from bench.registry import UnknownName

PREFIX = "timm"


@functools.cache
def _pretrained_names() -> frozenset[str]:
    import timm

    return frozenset(timm.list_pretrained())


def pretrained_cfg(spec: str):
    """timm's `PretrainedCfg` of `model.tag`; UnknownName (one line, how to list) for anything else."""
    import timm

    model, dot, tag = spec.partition(".")
    if not (dot and tag):
        raise UnknownName(f"timm:{spec} names no pretrained tag (timm:<model>.<tag>, e.g. timm:resnet18.a1_in1k); "
                          f"`timm.list_pretrained('{model}.*')` lists its tags")
    if spec not in _pretrained_names():
        raise UnknownName(f"unknown timm model or tag {spec!r} (timm {timm.__version__}); "
                          f"`timm.list_pretrained('{model}*')` lists what exists")
    return timm.models.get_pretrained_cfg(spec)


def weights_label(cfg) -> str:
    """`imagenet` for an ImageNet-1k classifier (what grids write), else the dataset its tag ends with."""
    if cfg.num_classes == 1000 and "in1k" in cfg.tag:
        return "imagenet"
    return cfg.tag.rsplit("_", 1)[-1]


def timm_info(spec: str) -> BackboneInfo:
    cfg = pretrained_cfg(spec)
    channels, height, width = cfg.input_size
    if not cfg.num_classes:
        raise ValueError(f"timm:{spec} has no classifier head (num_classes 0): a feature extractor, not a backbone "
                         "to reprogram; pick a tag with a classifier")
    if height != width:
        raise ValueError(f"timm:{spec} is trained at {height}x{width}; only square inputs are supported")
    return BackboneInfo(
        f"{PREFIX}:{spec}", input_size=height, channels=channels, mean=tuple(cfg.mean), std=tuple(cfg.std),
        num_classes=cfg.num_classes, weights=(weights_label(cfg),),
        description=f"timm {spec} ({cfg.interpolation}, crop_pct {cfg.crop_pct})",
    )


def timm_weights(spec: str) -> WeightsFile | None:
    cfg = pretrained_cfg(spec)
    name = f"{PREFIX}:{spec}"
    if cfg.hf_hub_id:
        return HubFile(name, cfg.hf_hub_id, (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HF_FILES)
    return TorchHubFile(name, cfg.url) if cfg.url else None


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


def _create(spec: str, info: BackboneInfo, weights: str | None) -> nn.Module:
    import timm

    cfg = pretrained_cfg(spec)
    size = {}
    if cfg.fixed_input_size and info.input_size != cfg.input_size[-1]:
        # a ViT's position embeddings fix its input size: timm builds it for this one (and resamples pretrained ones)
        size["img_size"] = info.input_size
    try:
        if weights is None:
            return timm.create_model(spec, pretrained=False, **size)
        path = verified_weights_path(info.name)  # the local file, checked, or one line before anything is built
        return timm.create_model(spec, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **size)
    except TypeError as e:
        if size:
            raise ValueError(f"{info.name} takes {cfg.input_size[-1]}px input only (timm: {e})") from None
        raise


def resolve(spec: str) -> tuple[BackboneInfo, Factory]:
    info = timm_info(spec)

    def factory(info: BackboneInfo, weights: str | None) -> Backbone:
        body, head = timm_split(_create(spec, info, weights))
        return Backbone(info, body, head)

    return info, factory


register_backbone_family(BackboneFamily(
    PREFIX, resolve, timm_weights,
    description="any timm classifier with pretrained weights (timm.list_pretrained()); preprocessing from its "
                "pretrained_cfg; weights from the Hugging Face hub",
    example="timm:resnet18.a1_in1k",
))
