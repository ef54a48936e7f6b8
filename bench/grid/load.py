"""A grid file -> a Grid: find it, read it within `bench.grid.guard`'s limits, validate and expand it, then apply what
this machine has on disk (bench.grid.availability). Every problem is one GridError line that names the file."""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import yaml

from bench.grid.availability import expand_here
from bench.grid.cells import Grid
from bench.grid.edits import apply_overrides
from bench.grid.errors import GridError
from bench.grid.guard import MAX_CELLS, MAX_GRID_BYTES, GuardError, load_yaml
from bench.grid.shipped import GRIDS_DIR, shipped_names
from bench.grid.validation import validate_grid


def resolve_grid_path(grid: str | Path) -> Path:
    """A path to a YAML file, or the name of a grid shipped in bench/grids (e.g. `demo`)."""
    path = Path(grid)
    if path.is_file():
        return path
    shipped = GRIDS_DIR / f"{grid}.yaml"
    if shipped.is_file():
        return shipped
    known = ", ".join(shipped_names())
    raise GridError(f"{grid}: no such grid file, and not a shipped grid ({known})")


def load_grid(grid: str | Path, data_root: Optional[Path] = None, max_cells: int = MAX_CELLS,
              overrides: Sequence[str] = ()) -> Grid:
    """Load, validate and expand a grid (within `bench.grid.guard`'s limits), with `key.path=value` overrides
    (bench.grid.edits) applied to its YAML first. Raises GridError with one line that names the file."""
    path = resolve_grid_path(grid)
    raw = read_grid_yaml(path)
    default_name = re.sub(r"[^A-Za-z0-9_-]", "_", path.stem)
    try:
        raw = apply_overrides(raw, overrides)
        return expand_here(validate_grid(raw, default_name, max_cells), path, data_root)
    except (GridError, GuardError) as exc:
        raise GridError(f"{path}: {exc}") from None


def read_grid_yaml(path: Path) -> Any:
    """The file's YAML as Python objects; what is not plain YAML, or breaks the guard's limits, is a GridError."""
    try:
        return load_yaml(read_text(path))
    except yaml.constructor.ConstructorError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise GridError(f"{path}: not plain YAML{at}: {exc.problem}; a grid holds only mappings, lists, strings and "
                        "numbers (no tags such as !!python/object)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())  # a ReaderError has no problem
        raise GridError(f"{path}: not valid YAML{at}: {problem}") from None
    except GuardError as exc:
        raise GridError(f"{path}: {exc}") from None


def read_text(path: Path) -> str:
    """The file's text, reading at most one byte past the size cap: a huge (or sparse, or growing) file is refused
    without being read into memory."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_GRID_BYTES + 1)
        if len(data) > MAX_GRID_BYTES:
            raise GridError(f"{path}: the file is over {MAX_GRID_BYTES // 1024} KiB; a grid is a short YAML mapping")
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GridError(f"{path}: not a text file (UTF-8): {exc.reason} at byte {exc.start}") from None
    except OSError as exc:
        raise GridError(f"{path}: cannot read it: {exc.strerror or exc}") from None
