"""What the tests of bench.grid share: a minimal grid, and helpers that write one to a file and load it."""
from __future__ import annotations

from pathlib import Path

import yaml

from bench.grid import load_grid

BASE = {
    "originals": [{"backbone": "smallcnn", "trained_on": "digits"}],
    "tasks": ["digits"],
    "methods": [{"name": "ar"}],
}
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def write(tmp_path: Path, raw, name: str = "grid") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, sort_keys=False))
    return path


def load(tmp_path: Path, raw, name: str = "grid"):
    return load_grid(write(tmp_path, raw, name))


def of(grid, method: str) -> list:
    return [c for c in grid.cells if c.method == method]


def only_ar_id(tmp_path: Path, raw, name: str) -> str:
    (cell,) = of(load(tmp_path, raw, name), "ar")
    return cell.cell_id
