"""The backbone registry: decorated factories, each with its `BackboneInfo` stored as its metadata, and families of
backbones named by the library that holds them (`timm:<name>.<tag>`, `torchvision:<model>.<WEIGHTS>`,
`clip:<arch>/<pretrained>`, `keras:<Application>`).

Every module of bench/models is imported before the first lookup, so a module there with a
`@register_backbone(BackboneInfo(...))` factory, or a `register_backbone_family(BackboneFamily(...))` call, is all
a new backbone (or a whole library of them) takes (tests/test_models.py checks it).

A family resolves the part of a name after its prefix to a `BackboneInfo` and a factory, read from the library's
own config (never hand-typed where the library has it); short names such as `resnet18` stay registered entries,
most of them aliases of a family name (`register_backbone_alias`: one code path, while a grid that says `resnet18`
keeps its cell ids).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bench.models.backbone import Backbone, BackboneInfo
from bench.registry import Registry, UnknownName

if TYPE_CHECKING:
    from bench.models.weights import WeightsFile

Factory = Callable[[BackboneInfo, "str | None"], Backbone]
BACKBONES: Registry[Factory] = Registry("backbone", package="bench.models")


@dataclass(frozen=True)
class BackboneFamily:
    """Every backbone of one library, by name: `<prefix>:<spec>`.

    `resolve(spec)` -> (info, factory) without downloading anything (an unknown spec raises UnknownName, one line
    naming the spec and how to list what exists); `weights(spec)` -> the `WeightsFile` behind its `imagenet`
    weights (bench.models.weights), or None when the spec names a random-init model only.
    """

    prefix: str
    resolve: Callable[[str], tuple[BackboneInfo, Factory]]
    weights: Callable[[str], WeightsFile | None]
    description: str  # one line for `reprogbench ls --backbones` and docs/backbones.md
    example: str  # a full name, e.g. "timm:resnet18.a1_in1k"
    # named preprocessings other than the weights' own that its factories take as `preprocessing=` (e.g. the
    # thesis code's "thesis" for keras:), which a grid's original may ask for
    preprocessings: tuple[str, ...] = ()


FAMILIES: Registry[BackboneFamily] = Registry("backbone family", package="bench.models")


def register_backbone_family(family: BackboneFamily) -> BackboneFamily:
    return FAMILIES.register(family.prefix, family)


def family_of(name: str) -> tuple[BackboneFamily, str] | None:
    """(family, spec) for `prefix:spec`, None for a short registered name."""
    prefix, colon, spec = name.partition(":")
    if not colon:
        return None
    if prefix not in FAMILIES:
        raise UnknownName(f"unknown backbone library {prefix!r} in {name!r}; known: "
                          f"{', '.join(f'{p}: (e.g. {FAMILIES.get(p).example})' for p in FAMILIES.names())}")
    return FAMILIES.get(prefix), spec


def known_backbone(name: str) -> bool:
    """A registered short name, or `prefix:spec` that its family resolves (no download, no weights needed)."""
    try:
        backbone_info(name)
    except (UnknownName, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=256)
def _resolved(name: str) -> tuple[BackboneInfo, Factory]:
    family, spec = family_of(name)  # type: ignore[misc]
    info, factory = family.resolve(spec)
    return replace(info, name=name), factory


def register_backbone(info: BackboneInfo) -> Callable[[Factory], Factory]:
    def wrap(factory: Factory) -> Factory:
        BACKBONES.register(info.name, factory, info=info)
        return factory

    return wrap


def register_backbone_alias(short: str, full: str, description: str = "") -> None:
    """`short` is `full` (a family name) under another name: same info, same factory, same weights file.

    Resolved on first use, so registering imports no library (timm is only imported when a timm name is looked up).
    """

    def factory(info: BackboneInfo, weights: str | None) -> Backbone:
        return _factory(full)(info, weights)  # info carries the short name: messages name what the grid says

    BACKBONES.register(short, factory, alias=full, description=description)


def alias_of(name: str) -> str | None:
    """The family name a short name stands for (None: not an alias)."""
    if family_of(name) is not None:
        return None
    return BACKBONES.metadata(name).get("alias")


def list_backbones() -> list[str]:
    """The short registered names (a family's names are open-ended: see `FAMILIES`)."""
    return BACKBONES.names()


def backbone_info(name: str) -> BackboneInfo:
    if family_of(name) is not None:
        return _resolved(name)[0]
    metadata = BACKBONES.metadata(name)
    if "alias" in metadata:
        info = backbone_info(metadata["alias"])
        return replace(info, name=name, description=metadata["description"] or info.description)
    return metadata["info"]


def _factory(name: str) -> Factory:
    return _resolved(name)[1] if family_of(name) is not None else BACKBONES.get(name)


def preprocessings(name: str) -> tuple[str, ...]:
    """The named preprocessings `create_backbone(name, preprocessing=...)` takes besides the weights' own."""
    found = family_of(name)
    return found[0].preprocessings if found is not None else ()


def check_preprocessing(name: str, preprocessing: str | None) -> None:
    if preprocessing is not None and preprocessing not in preprocessings(name):
        allowed = ", ".join(preprocessings(name)) or "none (only its weights' own)"
        raise ValueError(f"backbone {name!r} has no preprocessing {preprocessing!r}; available: {allowed}")


def create_backbone(
    name: str,
    *,
    weights: str | None = None,
    num_classes: int | None = None,
    input_size: int | None = None,
    preprocessing: str | None = None,
) -> Backbone:
    """Build `name` with random init (`weights=None`) or named pretrained weights read from local disk.

    `num_classes` replaces the head (a new task); `input_size` overrides the resolution the model is fed
    (the convolutional nets here pool adaptively, so e.g. ResNet-18 at 64x64 is a cheap CPU stand-in);
    `preprocessing` names one of `preprocessings(name)` instead of the one its weights were trained with.
    """
    info, factory = backbone_info(name), _factory(name)
    if weights is not None and weights not in info.weights:
        allowed = ", ".join(info.weights) or "none (random init only)"
        raise ValueError(f"backbone {name!r} has no weights {weights!r}; available: {allowed}")
    check_preprocessing(name, preprocessing)
    if input_size is not None:
        info = replace(info, input_size=input_size)
    # only a family that names preprocessings takes the keyword: every other factory stays (info, weights)
    model = factory(info, weights, preprocessing=preprocessing) if preprocessing else factory(info, weights)
    if num_classes is not None and num_classes != model.num_classes:
        model.replace_head(num_classes)
    return model
