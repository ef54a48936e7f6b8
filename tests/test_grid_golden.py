"""Every shipped grid lists the same cells, with the same cell_ids, names and dependencies, as when the golden
file was written (main at 48bb879, before the "one owner per concept" restructuring).

A changed id means finished results on users' disks would no longer be found: regenerate the golden file only for
a deliberate change of a grid or a spec, and say so in the commit. Two machine states are checked: Fashion-MNIST
on disk (the demo pretrains on it), and nothing on disk (the demo's fallback original, pretrained on digits).
"""
import json
from pathlib import Path

import pytest

from bench.grid import GRIDS_DIR, load_grid

GOLDEN = json.loads((Path(__file__).parent / "golden" / "cell_ids.json").read_text())
STATES = {"prepared": "/usr/share/datasets/fashion-mnist", "bare": "/nonexistent"}


def test_every_shipped_grid_is_in_the_golden_file():
    assert sorted(p.stem for p in GRIDS_DIR.glob("*.yaml")) == sorted(GOLDEN)


@pytest.mark.parametrize("state", sorted(STATES))
@pytest.mark.parametrize("grid", sorted(GOLDEN))
def test_grid_lists_the_golden_cells(grid, state, tmp_path, monkeypatch):
    if state == "prepared" and not Path(STATES[state], "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (make test installs it)")
    monkeypatch.setenv("REPROGBENCH_DEBIAN_FASHION_MNIST", STATES[state])
    loaded = load_grid(grid, data_root=tmp_path)
    want = GOLDEN[grid][state]
    assert [c.cell_id for c in loaded.cells] == want["cells"]
    assert sorted(c.cell_id for c in loaded.skipped) == want["skipped"]
    assert sorted(c.cell_id for c in loaded.unprepared) == want["unprepared"]
    assert {c.cell_id: list(c.depends_on) for c in loaded.cells if c.depends_on} == want["depends_on"]
    assert {c.cell_id: c.name for c in loaded.cells} == want["names"]
