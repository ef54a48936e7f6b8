"""What is on disk acts only after the expansion: a grid expands to the same cells on every machine, and
`load_grid` then takes an original's `fallback:` where its dataset is missing and marks an optional original's
cells as not prepared, as tests/golden/cell_ids.json records for a machine with and one without Fashion-MNIST."""
from __future__ import annotations

import builtins
import json
import os
from pathlib import Path

import pytest
from fixtures_grids import DEBIAN_FASHION, of

from bench.grid import GRIDS_DIR, build_grid, load_grid
from bench.grid.load import read_grid_yaml

GOLDEN = json.loads((Path(__file__).parent / "golden" / "cell_ids.json").read_text())
SHIPPED = sorted(p.stem for p in GRIDS_DIR.glob("*.yaml"))
HAS_FASHION = (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file()


def machine(monkeypatch, tmp_path: Path, state: str) -> Path:
    """Point the data lookups at a machine with Fashion-MNIST (Debian's files) or with nothing; -> its data root."""
    root = tmp_path / state
    monkeypatch.setenv("REPROGBENCH_DATA", str(root))
    monkeypatch.setenv("REPROGBENCH_DEBIAN_FASHION_MNIST", str(DEBIAN_FASHION if state == "prepared" else root))
    return root


def refuse_files(*_args, **_kwargs):
    raise AssertionError("the expansion looked at a file")


def snapshot(grid) -> dict:
    return {"cells": [(c.cell_id, c.name, c.depends_on, c.search) for c in grid.cells],
            "skipped": [(c.cell_id, c.skip_reason) for c in grid.skipped], "optional": sorted(grid.optional_ids),
            "unprepared": grid.unprepared, "notes": grid.notes}


def expanded(name: str, fallbacks=()):
    path = GRIDS_DIR / f"{name}.yaml"
    return build_grid(read_grid_yaml(path), name, path, fallbacks)


@pytest.mark.parametrize("grid", SHIPPED)
def test_a_grid_expands_to_the_same_cells_on_every_machine_without_reading_a_file(grid, tmp_path, monkeypatch):
    raw = read_grid_yaml(GRIDS_DIR / f"{grid}.yaml")
    # the registries import their packages' modules on first use (that reads files): done before files are refused,
    # so the check is of the expansion, whichever test ran first
    build_grid(raw, grid, GRIDS_DIR / f"{grid}.yaml")
    seen = []
    for state in ("prepared", "bare"):
        machine(monkeypatch, tmp_path, state)
        with monkeypatch.context() as no_files:
            for module, name in ((os, "stat"), (os, "lstat"), (os, "scandir"), (os, "listdir"), (builtins, "open")):
                no_files.setattr(module, name, refuse_files)
            seen.append(snapshot(build_grid(raw, grid, GRIDS_DIR / f"{grid}.yaml")))
    assert seen[0] == seen[1]
    assert seen[0]["notes"] == [] and seen[0]["unprepared"] == []  # what is on disk is load_grid's to say


@pytest.mark.parametrize("state", ["prepared", "bare"])
@pytest.mark.parametrize("grid", SHIPPED)
def test_load_grid_applies_this_machines_files_after_the_expansion(grid, state, tmp_path, monkeypatch):
    if state == "prepared" and not HAS_FASHION:
        pytest.skip("Debian's dataset-fashion-mnist is not installed (make test installs it)")
    root = machine(monkeypatch, tmp_path, state)
    loaded, pure, want = load_grid(grid, data_root=root), expanded(grid), GOLDEN[grid][state]
    assert [c.cell_id for c in loaded.cells] == want["cells"]
    assert sorted(c.cell_id for c in loaded.unprepared) == want["unprepared"]
    falls_back = grid in ("demo", "methods") and state == "bare"  # their first original: fashion_mnist, or digits
    assert len(loaded.notes) == falls_back
    if not falls_back:
        # the pass only moved the optional originals' unprepared cells (and an original nobody needs then) away
        assert set(want["cells"]) | set(want["unprepared"]) == {c.cell_id for c in pure.cells}
        assert sorted(c.cell_id for c in loaded.skipped) == want["skipped"]
    else:
        assert [c.cell_id for c in expanded(grid, fallbacks=[0]).cells if c.cell_id not in want["unprepared"]] == \
            want["cells"]
    assert set(want["unprepared"]) <= pure.optional_ids
    by_id = loaded.by_id()
    for cell in loaded.cells:
        assert all(dep in by_id for dep in cell.depends_on)


def test_skipped_cells_keep_the_expansion_order_when_unprepared_ones_join_them(tmp_path, monkeypatch):
    grid = load_grid("methods", data_root=machine(monkeypatch, tmp_path, "bare"))
    assert grid.unprepared and all(c in grid.skipped for c in grid.unprepared)
    ranks = [grid.expansion_order[c.cell_id] for c in grid.skipped]
    assert ranks == sorted(ranks)
    assert all(c.search is None and c.skip_reason.startswith("not prepared: ") for c in grid.unprepared)


def test_demo_falls_back_to_digits_when_fashion_mnist_is_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("REPROGBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("REPROGBENCH_DEBIAN_FASHION_MNIST", str(tmp_path / "no-debian"))
    grid = load_grid("demo")
    (pretrain,) = of(grid, "pretrain")
    assert pretrain.task == "digits"
    assert {c.trained_on for c in grid.cells if c.spec["original"]} == {"digits"}
    assert len(grid.notes) == 1
    assert "fashion_mnist" in grid.notes[0] and "digits" in grid.notes[0]
    assert not (tmp_path / "data").exists()  # checking availability writes nothing


@pytest.mark.skipif(not HAS_FASHION,
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_demo_pretrains_on_fashion_mnist_when_debian_files_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("REPROGBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("REPROGBENCH_DEBIAN_FASHION_MNIST", raising=False)
    grid = load_grid("demo")
    (pretrain,) = of(grid, "pretrain")
    assert pretrain.task == "fashion_mnist" and grid.notes == []
    assert pretrain.name == "pretrain smallcnn on fashion_mnist seed0"
    names = [c.name for c in grid.cells]
    assert "linear_probe fashion_mnist/smallcnn -> digits seed0" in names
    assert "scratch smallcnn -> squares seed0" in names
