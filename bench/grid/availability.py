"""What this machine has on disk, applied to a grid around its (pure) expansion: the only part of bench.grid that
looks at files.

- An original with `fallback:` whose `trained_on` dataset is not on disk pretrains on the fallback instead; which
  originals do is an explicit input of the expansion, and the grid says so in a note.
- The cells of `optional:` originals whose inputs (ImageNet weights, datasets) are missing move from `cells` to
  `skipped` and `unprepared`, saying what is missing; `reprogbench prepare GRID` fetches them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from bench.data import dataset_available, list_datasets
from bench.grid.cells import Cell, Grid
from bench.grid.expansion import dependency_order, expand_grid
from bench.grid.schema import GridFile, OriginalSpec


def expand_here(grid: GridFile, path: Path, data_root: Optional[Path] = None) -> Grid:
    """The grid as this machine can run it: fallbacks taken, optional originals' missing inputs marked."""
    fallbacks = falling_back(grid, data_root)
    expanded = expand_grid(grid, path, fallbacks)
    expanded.notes.extend(fallback_note(grid.originals[i]) for i in fallbacks)
    return mark_unprepared(expanded, data_root)


def falling_back(grid: GridFile, data_root: Optional[Path] = None) -> list[int]:
    """Indices of the originals that pretrain on their `fallback:` because `trained_on` is not on disk."""
    known = set(list_datasets())  # an unknown name is the expansion's error to report, not a missing file
    return [i for i, o in enumerate(grid.originals)
            if o.weights is None and o.fallback in known and o.trained_on in known
            and not dataset_available(o.trained_on, data_root)]


def fallback_note(original: OriginalSpec) -> str:
    return (f"{original.trained_on} is not on disk: the {original.backbone} original is pretrained on "
            f"{original.fallback} instead")


def mark_unprepared(grid: Grid, data_root: Optional[Path] = None) -> Grid:
    """`grid` with the optional originals' cells that lack an input here moved to `skipped` and `unprepared`."""
    unprepared = []
    for cell in grid.cells:
        missing = missing_inputs(cell.spec, data_root, grid.name) if cell.cell_id in grid.optional_ids else None
        if missing:
            unprepared.append(replace(cell, skip_reason=missing, search=None))
    if not unprepared:
        return grid
    gone = {c.cell_id for c in unprepared}
    cells = dependency_order([c for c in grid.cells if c.cell_id not in gone])
    # skipped stays in expansion order, as if the expansion itself had skipped them
    listed = sorted([*grid.skipped, *unprepared], key=lambda c: grid.expansion_order[c.cell_id])
    skipped: dict[str, Cell] = {}
    for cell in listed:
        skipped.setdefault(cell.cell_id, cell)
    return replace(grid, cells=cells, skipped=list(skipped.values()), unprepared=[*grid.unprepared, *unprepared])


def missing_inputs(spec: Mapping[str, Any], data_root: Optional[Path], grid: str) -> Optional[str]:
    """What an optional original's cell lacks on this machine (None: all there)."""
    from bench.models.weights import weights_present

    missing = []
    original = spec["original"] or {}
    if original.get("weights") is not None and not weights_present(spec["backbone"]["name"]):
        missing.append(f"{original['weights']} weights for {spec['backbone']['name']}")
    if not dataset_available(spec["task"], data_root):
        missing.append(f"dataset {spec['task']}")
    if not missing:
        return None
    return f"not prepared: {' and '.join(missing)}; `reprogbench prepare {grid}` fetches them (optional original)"
