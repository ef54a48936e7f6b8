"""The backbone registry: decorated factories, each with its `BackboneInfo` stored as its metadata.

Every module of bench/models is imported before the first lookup, so a module there with a
`@register_backbone(BackboneInfo(...))` factory is all a new backbone takes (tests/test_models.py checks it).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bench.models.backbone import Backbone, BackboneInfo
from bench.registry import Registry

Factory = Callable[[BackboneInfo, "str | None"], Backbone]
BACKBONES: Registry[Factory] = Registry("backbone", package="bench.models")


def register_backbone(info: BackboneInfo) -> Callable[[Factory], Factory]:
    def wrap(factory: Factory) -> Factory:
        BACKBONES.register(info.name, factory, info=info)
        return factory

    return wrap


def list_backbones() -> list[str]:
    return BACKBONES.names()


def backbone_info(name: str) -> BackboneInfo:
    return BACKBONES.metadata(name)["info"]


def create_backbone(
    name: str,
    *,
    weights: str | None = None,
    num_classes: int | None = None,
    input_size: int | None = None,
) -> Backbone:
    """Build `name` with random init (`weights=None`) or named pretrained weights read from local disk.

    `num_classes` replaces the head (a new task); `input_size` overrides the resolution the model is fed
    (the convolutional nets here pool adaptively, so e.g. ResNet-18 at 64x64 is a cheap CPU stand-in).
    """
    info, factory = backbone_info(name), BACKBONES.get(name)
    if weights is not None and weights not in info.weights:
        allowed = ", ".join(info.weights) or "none (random init only)"
        raise ValueError(f"backbone {name!r} has no weights {weights!r}; available: {allowed}")
    if input_size is not None:
        info = replace(info, input_size=input_size)
    model = factory(info, weights)
    if num_classes is not None and num_classes != model.num_classes:
        model.replace_head(num_classes)
    return model
