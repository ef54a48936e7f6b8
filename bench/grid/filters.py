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


def fields_of(cell: Cell) -> dict[str, str]:
    """What each filter key compares, as text."""
    return {
        "method": cell.method, "task": cell.task, "backbone": cell.backbone, "seed": str(cell.seed),
        "original": cell.trained_on or "", "id": cell.cell_id,
    }


def matches(cell: Cell, filters: Mapping[str, str]) -> bool:
    fields = fields_of(cell)
    return all(fields[k] == v for k, v in filters.items())


SHOWN_VALUES = 12  # a grid's ids run to hundreds: the message stays one readable line


def check_selects(cells: Sequence[Cell], filters: Mapping[str, str], grid_name: str) -> None:
    """A GridError when the filters match none of `cells` (a typo would otherwise select nothing and exit 0): it
    names the filter that matches nothing and the values the grid has for its key."""
    if not filters or any(matches(c, filters) for c in cells):
        return
    rows = [fields_of(c) for c in cells]
    for key, value in filters.items():  # a value no cell has
        if all(row[key] != value for row in rows):
            raise GridError(f"--filter {key}={value}: no cell of {grid_name} has that {key}; "
                            f"its {key} values: {_values(rows, key)}")
    *others, (key, value) = filters.items()  # each value exists, but not together
    among = [row for row in rows if all(row[k] == v for k, v in others)]
    given = " ".join(f"{k}={v}" for k, v in others)
    raise GridError(f"--filter {key}={value}: no cell of {grid_name} with {given} has that {key}; "
                    f"their {key} values: {_values(among, key)}")


def _values(rows: list[dict[str, str]], key: str) -> str:
    values = sorted({row[key] or "(none)" for row in rows}, key=lambda v: (len(v), v) if key == "seed" else v)
    shown = ", ".join(values[:SHOWN_VALUES])
    return shown + (f", ... ({len(values)} in all; `reprogbench ls GRID` lists them)" if len(values) > SHOWN_VALUES
                    else "")


def select(cells: Sequence[Cell], filters: Mapping[str, str]) -> list[Cell]:
    """Cells matching every filter, plus what they depend on, in the order of `cells` (dependency order)."""
    chosen = {c.cell_id for c in cells if matches(c, filters)}
    chosen |= {dep for c in cells if c.cell_id in chosen for dep in c.depends_on}
    return [c for c in cells if c.cell_id in chosen]
