"""`python -m bench.speed.one_cell GRID CELL_ID RESULTS`: one cell of a grid, trained in the foreground, no
tracking; what the `ddp` measurement starts under torchrun (bench runs its cells itself, never through launch)."""
from __future__ import annotations

import sys
from pathlib import Path

from bench.files import cell_dir
from bench.grid import load_grid


def main(argv: list[str]) -> int:
    from bench.train import run_cell

    grid_path, cell_id, results = argv
    grid = load_grid(Path(grid_path))
    cell = grid.by_id()[cell_id]
    run_cell(cell, cell_dir(Path(results), grid.name, cell_id),
             dependency_dirs={dep: cell_dir(Path(results), grid.name, dep) for dep in cell.depends_on})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
