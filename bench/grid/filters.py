"""`--filter KEY=VALUE`: which cells of a grid a command works on."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from bench.grid.errors import GridError

if TYPE_CHECKING:
    from bench.grid.cells import Cell

FILTER_KEYS = ("method", "task", "backbone", "seed", "original", "id")


def parse_filters(items: list[str]) -> dict[str, str]:
    """`["method=ar", "task=digits"]` -> dict; a bad item is a GridError naming the allowed keys."""
    filters = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in FILTER_KEYS:
            raise GridError(f"--filter {item!r}: expected KEY=VALUE with KEY one of {', '.join(FILTER_KEYS)}")
        filters[key] = value
    return filters


def matches(cell: Cell, filters: Mapping[str, str]) -> bool:
    fields = {
        "method": cell.method, "task": cell.task, "backbone": cell.backbone, "seed": str(cell.seed),
        "original": cell.trained_on or "", "id": cell.cell_id,
    }
    return all(fields[k] == v for k, v in filters.items())


def select(cells: Sequence[Cell], filters: Mapping[str, str]) -> list[Cell]:
    """Cells matching every filter, plus what they depend on, in the order of `cells` (dependency order)."""
    chosen = {c.cell_id for c in cells if matches(c, filters)}
    chosen |= {dep for c in cells if c.cell_id in chosen for dep in c.depends_on}
    return [c for c in cells if c.cell_id in chosen]
