"""Where the shipped grids live and what they are called; imports nothing heavy (shell completion reads it)."""
from __future__ import annotations

import functools
from pathlib import Path

GRIDS_DIR = Path(__file__).parent.parent / "grids"


def shipped_names() -> list[str]:
    """The names `run demo` and friends accept, e.g. demo, thesis_table_3_1."""
    return list(_listed())


@functools.cache
def _listed() -> tuple[str, ...]:
    # listed once per process: the package's grids do not change while it runs, and a grid's expansion (which
    # checks `compare_with` against these names) must read no file after its first one (test_grid_availability)
    return tuple(sorted(p.stem for p in GRIDS_DIR.glob("*.yaml")))
