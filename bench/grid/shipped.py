"""Where the shipped grids live and what they are called; imports nothing heavy (shell completion reads it)."""
from __future__ import annotations

from pathlib import Path

GRIDS_DIR = Path(__file__).parent.parent / "grids"


def shipped_names() -> list[str]:
    """The names `run demo` and friends accept, e.g. demo, thesis_table_3_1."""
    return sorted(p.stem for p in GRIDS_DIR.glob("*.yaml"))
