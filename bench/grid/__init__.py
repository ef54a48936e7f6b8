"""Grids and cells: a grid YAML -> validated, expanded cells, each keyed by a stable `cell_id`.

A grid names original models, new tasks, methods with their parameters, hyperparameters and seeds. Any list
value expands as a cartesian product; keys joined by commas zip their values, as benchopt does:
`"mask, combine": [[centre, add], [ones, multiply]]` gives two cells, not four.

One job per module: `schema` (what a grid file may say), `cells` (Cell, Grid, cell_id, names), `combinations`
(lists -> combinations), `validation`, `originals` and `expansion` (the file -> cells, the same on every machine),
`overrides` and `search_space` (a cell with parameters replaced, what a sweep samples), `filters` (`--filter`),
`availability` (what this machine has on disk: fallbacks, optional originals), `guard` and `load` (reading a file
safely, one-line errors). Callers import from here.
"""
from bench.grid.availability import expand_here, mark_unprepared
from bench.grid.cells import Cell, Grid, canonical_json, make_cell_id, short_value
from bench.grid.errors import GridError, one_line
from bench.grid.expansion import build_grid, expand_grid
from bench.grid.filters import FILTER_KEYS, parse_filters
from bench.grid.guard import MAX_CELLS
from bench.grid.load import GRIDS_DIR, load_grid, read_text, resolve_grid_path
from bench.grid.overrides import override_cell, searchable, skip_reason, with_overrides
from bench.grid.schema import IMAGENET, GridFile, HParams, OriginalSpec, SplitSpec
from bench.grid.search_space import Space, max_of, parse_space
from bench.grid.validation import validate_grid

__all__ = [
    "FILTER_KEYS", "GRIDS_DIR", "IMAGENET", "MAX_CELLS", "Cell", "Grid", "GridError", "GridFile", "HParams",
    "OriginalSpec", "Space", "SplitSpec", "build_grid", "canonical_json", "expand_grid", "expand_here", "load_grid",
    "make_cell_id", "mark_unprepared", "max_of", "one_line", "override_cell", "parse_filters", "parse_space",
    "read_text", "resolve_grid_path", "searchable", "short_value", "skip_reason", "validate_grid", "with_overrides",
]
