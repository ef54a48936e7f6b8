"""Hydra-style `key.path=value` overrides from the command line (`hparams.epochs=1 seeds=[0,1]
methods.0.hparams.lr=0.01`), applied to a grid file's parsed YAML *before* it is validated: an override is checked,
expanded and hashed exactly as the same edit of the file would be, so it changes cell ids as that edit would.

A path walks mappings by key and lists by index; a missing mapping key is added (as a new key in the file would be);
a list index must exist. The value is parsed as YAML (`1` an int, `[0,1]` a list, `adam` a string), within the
limits of `bench.grid.guard`. (`bench.grid.overrides` is another thing: a cell's own parameters replaced, for a
sweep's trial.)"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import yaml

from bench.grid.errors import GridError
from bench.grid.guard import GuardError, load_yaml


def looks_like_override(item: str) -> bool:
    """What the CLI takes for an override rather than a mistyped option: `key=...` with no leading dash."""
    key, sep, _ = item.partition("=")
    return bool(sep and key) and not item.startswith("-")


def parse_override(item: str) -> tuple[list[str], Any]:
    """`methods.0.lr=0.01` -> (["methods", "0", "lr"], 0.01)."""
    key, sep, text = item.partition("=")
    path = key.split(".")
    if not sep or not all(path):
        raise GridError(f"override {item!r}: expected KEY.PATH=VALUE, e.g. hparams.epochs=1 or seeds=[0,1]")
    try:
        value = load_yaml(text) if text.strip() else None
    except (yaml.YAMLError, GuardError) as exc:
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise GridError(f"override {item!r}: the value is not plain YAML ({problem}); quote the whole argument "
                        "for the shell, e.g. 'seeds=[0,1]'") from None
    return path, value


def apply_overrides(raw: Any, items: Sequence[str]) -> Any:
    """A copy of the grid's YAML with every override applied in order; the file's own objects stay untouched."""
    if not items or not isinstance(raw, dict):  # a file that is no mapping: validation says so, as without overrides
        return raw
    edited = copy.deepcopy(raw)
    for item in items:
        path, value = parse_override(item)
        parent = edited
        for depth, step in enumerate(path[:-1]):
            parent = _child(parent, step, path[:depth], item)
        _set(parent, path[-1], value, path[:-1], item)
    return edited


def _child(node: Any, step: str, above: list[str], item: str) -> Any:
    if isinstance(node, dict):
        if node.get(step) is None:
            node[step] = {}  # `hparams.epochs=1` in a file with no hparams: the mapping the edit would add
        return node[step]
    if isinstance(node, list):
        return node[_index(node, step, above, item)]
    where = ".".join(above) or "the grid"
    raise GridError(f"override {item!r}: {where} is {node!r}, not a mapping or a list, so it has no {step!r}")


def _set(node: Any, step: str, value: Any, above: list[str], item: str) -> None:
    if isinstance(node, dict):
        node[step] = value
    elif isinstance(node, list):
        node[_index(node, step, above, item)] = value
    else:
        where = ".".join(above)
        raise GridError(f"override {item!r}: {where} is {node!r}, not a mapping or a list, so it has no {step!r}")


def _index(node: list, step: str, above: list[str], item: str) -> int:
    where = ".".join(above)
    if not step.isdigit() or int(step) >= len(node):
        raise GridError(f"override {item!r}: {where} is a list of {len(node)}; index it by 0..{len(node) - 1}, "
                        f"not {step!r}")
    return int(step)
