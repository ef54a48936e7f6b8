"""A mapping with list values -> the combinations it stands for. Any list value expands as a cartesian product; keys
joined by commas zip their values, as benchopt does: `"mask, combine": [[centre, add], [ones, multiply]]` gives two
combinations, not four."""
from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from bench.grid.errors import GridError


def expand(mapping: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """Cartesian product over list values; `"a, b": [[1, 2], [3, 4]]` zips a and b."""
    axes: list[list[dict[str, Any]]] = []
    for key, value in mapping.items():
        if "," in key:
            names = [k.strip() for k in key.split(",")]
            rows_ok = isinstance(value, list) and value and all(
                isinstance(v, list) and len(v) == len(names) for v in value
            )
            if not rows_ok:
                raise GridError(f"{where}.{key}: zipped keys take a non-empty list of [{', '.join(names)}] lists")
            axes.append([dict(zip(names, v, strict=True)) for v in value])
        elif isinstance(value, list):
            if not value:
                raise GridError(f"{where}.{key}: an empty list expands to no cells")
            axes.append([{key: v} for v in value])
        else:
            axes.append([{key: value}])
    return [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*axes)]


def expansion_size(mapping: Mapping[str, Any]) -> int:
    """How many combinations `expand` would make of `mapping`, without making them."""
    size = 1
    for value in mapping.values():
        if isinstance(value, list):
            size *= max(len(value), 1)
    return size
