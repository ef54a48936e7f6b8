"""Grids and cells: a grid YAML -> validated, expanded cells, each keyed by a stable `cell_id`.

A grid names original models, new tasks, methods with their parameters, hyperparameters and seeds. Any list
value expands as a cartesian product; keys joined by commas zip their values, as benchopt does:
`"mask, combine": [[centre, add], [ones, multiply]]` gives two cells, not four.

One job per module: `schema` (what a grid file may say), `cells` (Cell, Grid, cell_id, names), `combinations`
(lists -> combinations), `validation`, `originals` and `expansion` (the file -> cells, the same on every machine),
`edits` (command-line `key.path=value` overrides of the file), `overrides` and `search_space` (a cell with
parameters replaced, what a sweep samples), `filters` (`--filter`), `availability` (what this machine has on disk:
fallbacks, optional originals), `guard` and `load` (reading a file safely, one-line errors). Callers import from here.
"""
import importlib

# name -> the module that owns it; imported on first use, so `bench.grid.guard` (the CLI's parser) stays free of
# torch, which expansion pulls in through the method registry
_OWNERS = {
    "Cell": "bench.grid.cells",
    "apply_overrides": "bench.grid.edits",
    "FILTER_KEYS": "bench.grid.filters",
    "GRIDS_DIR": "bench.grid.shipped",
    "Grid": "bench.grid.cells",
    "GridError": "bench.grid.errors",
    "GridFile": "bench.grid.schema",
    "HParams": "bench.grid.schema",
    "IMAGENET": "bench.grid.schema",
    "MAX_CELLS": "bench.grid.limits",
    "OriginalSpec": "bench.grid.schema",
    "Space": "bench.grid.search_space",
    "SplitSpec": "bench.grid.schema",
    "build_grid": "bench.grid.expansion",
    "canonical_json": "bench.grid.cells",
    "expand_grid": "bench.grid.expansion",
    "expand_here": "bench.grid.availability",
    "load_grid": "bench.grid.load",
    "make_cell_id": "bench.grid.cells",
    "mark_unprepared": "bench.grid.availability",
    "max_of": "bench.grid.search_space",
    "one_line": "bench.grid.errors",
    "override_cell": "bench.grid.overrides",
    "parse_filters": "bench.grid.filters",
    "parse_space": "bench.grid.search_space",
    "read_text": "bench.grid.load",
    "resolve_grid_path": "bench.grid.load",
    "searchable": "bench.grid.overrides",
    "short_value": "bench.grid.cells",
    "skip_reason": "bench.grid.overrides",
    "validate_grid": "bench.grid.validation",
    "with_overrides": "bench.grid.overrides",
}


def __getattr__(name: str):
    if name not in _OWNERS:
        raise AttributeError(f"module 'bench.grid' has no attribute {name!r}")
    return getattr(importlib.import_module(_OWNERS[name]), name)


__all__ = sorted(_OWNERS)
