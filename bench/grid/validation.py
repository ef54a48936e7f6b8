"""The first step of a grid: its parsed YAML checked as a whole (schema, limits, the names it refers to) before any
cell is made; each problem is one GridError line naming its key."""
from __future__ import annotations

from typing import Any

from bench.data import known_task, list_datasets
from bench.grid.errors import GridError, check_keys, check_known, validated
from bench.grid.guard import MAX_CELLS, cell_bound, check_cells, check_name
from bench.grid.schema import GridFile
from bench.methods import grid_methods


def validate_grid(raw: Any, default_name: str, max_cells: int = MAX_CELLS) -> GridFile:
    """The grid file as a GridFile whose `name` is set (`default_name` where the file gives none)."""
    if not isinstance(raw, dict):
        raise GridError("the file must be a YAML mapping with originals, tasks, methods, hparams, seeds")
    for key in ("hparams", "split"):
        if not isinstance(raw.get(key, {}), dict):
            raise GridError(f"{key}: must be a mapping of key: value")
    check_keys(raw, "")
    grid = validated(GridFile, raw, "")
    name = grid.name or default_name
    check_name(name)
    check_cells(cell_bound(len(grid.originals), len(grid.tasks), grid.methods, grid.hparams, len(grid.seeds)),
                max_cells)
    _check_references(grid)
    return grid.model_copy(update={"name": name})


def _check_references(grid: GridFile) -> None:
    """Tasks, the originals' task and method lists, and the reference table name things that exist."""
    for i, task in enumerate(grid.tasks):
        if not known_task(task):  # a dataset, or a joint task `a+b` of datasets (bench.data.joint)
            for part in task.split("+"):
                check_known("dataset", part, list_datasets(), f"tasks[{i}]")
        parts = task.split("+")
        repeated = sorted({p for p in parts if parts.count(p) > 1})
        if repeated:  # its classes would be two copies of one set, and its per-part figures one
            raise GridError(f"tasks[{i}]: joint task {task!r} repeats {', '.join(repeated)}; each part once")
    for i, orig in enumerate(grid.originals):
        for task in orig.tasks or []:
            if task not in grid.tasks:
                raise GridError(f"originals[{i}].tasks: {task!r} is not among the grid's tasks: "
                                f"{', '.join(grid.tasks)}")
        for method_name in orig.methods or []:
            check_known("method", method_name, grid_methods(), f"originals[{i}].methods")
    if grid.reference is not None:
        from bench.reference import list_references

        check_known("reference table", grid.reference, list_references(), "reference")
    if grid.differs and grid.compare_with is None:
        raise GridError("differs: says what differs from another grid; name that grid in `compare_with`")
    if grid.compare_with is not None:
        from bench.grid.shipped import shipped_names

        check_known("shipped grid", grid.compare_with, shipped_names(), "compare_with")
        if not grid.differs:  # a variant that does not say how it differs is the silent gap reports must not have
            raise GridError(f"compare_with: {grid.compare_with!r} needs `differs:`, one line per difference")
