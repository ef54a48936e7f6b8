"""The contract every registered reference table meets, parametrised over `list_references()`: its file loads,
its rows have figures and keys of their own, and the cells of the shipped grids that name it find its rows."""
from __future__ import annotations

import pytest

from bench.grid import load_grid, resolve_grid_path
from bench.reference import (
    REFERENCE_DIR,
    REFERENCE_TABLES,
    list_references,
    method_value,
    reference_figure,
    reference_row,
    reference_rows,
    row_key,
)

NAMES = list_references()
SHIPPED_GRIDS = sorted(p.stem for p in resolve_grid_path("demo").parent.glob("*.yaml"))


def grids_naming(name: str) -> list:
    return [g for g in (load_grid(n) for n in SHIPPED_GRIDS) if g.reference == name]


def test_the_shipped_tables_are_listed_in_the_thesis_order_then_later_work():
    assert NAMES[:4] == ["thesis_table_3_1", "thesis_experiment_2", "thesis_table_5_1", "later_work"]


@pytest.mark.parametrize("name", NAMES)
def test_its_file_loads_and_every_row_has_a_figure(name):
    table = REFERENCE_TABLES.get(name)
    assert table.name == name and REFERENCE_TABLES.metadata(name)["file"] == table.file
    rows = table.rows()
    if not table.file:  # the work reports no figures: a note says so
        assert rows == [] and (REFERENCE_DIR / f"{name}.md").is_file()
        return
    assert (REFERENCE_DIR / table.file).is_file() and rows
    for row in rows:
        assert row.key[0] == name and row.name and row.table and row.panel
        assert 0 <= row.test_acc <= 100 and (row.train_acc is None or 0 <= row.train_acc <= 100)
        assert row.labels and all(isinstance(label, str) for label, _ in row.labels)
    assert len({r.key for r in rows}) == len(rows)  # a cell finds at most one row


@pytest.mark.parametrize("name", NAMES)
def test_a_thesis_table_adds_the_original_models_and_others_do_not(name):
    table = REFERENCE_TABLES.get(name)
    extra = reference_rows(name)[len(table.rows()):]
    assert bool(extra) == table.thesis and all(r.key[0] != name for r in extra)


@pytest.mark.parametrize("name", NAMES)
def test_the_cells_of_the_grids_that_name_it_find_their_rows(name, caches):
    keys = {r.key for r in reference_rows(name)}
    for grid in grids_naming(name):
        cells = [*grid.cells, *grid.unprepared]
        found = [c for c in cells if row_key(name, c) in keys]
        assert found or not REFERENCE_TABLES.get(name).file, f"no cell of {grid.name} finds a row of {name}"
        for c in found:
            assert reference_figure(name, c)["test_acc"] is not None


def test_later_work_rows_key_to_the_cells_with_the_papers_layout_and_carry_its_recipe(caches):

    grid = load_grid("methods")
    matched = {}
    for c in [*grid.cells, *grid.unprepared]:
        row = reference_row("later_work", c)
        if row:
            matched.setdefault(row.name, []).append(c)
    ilm = matched["ILM-VP (CVPR 2023) resnet18 -> cifar10"]
    # ILM-VP keeps CIFAR at 32 px on the 224 px canvas: our canvas at its native size, not pad's 164 px input
    assert [(c.backbone, method_value(c, "program"), method_value(c, "input_size"), method_value(c, "label_map"),
             c.spec["hparams"].get("lr_milestones")) for c in ilm] == [
        ("resnet18", "canvas", None, "iterative", None),  # the suite's recipe
        ("resnet18", "canvas", None, "iterative", "100/144")]  # ILM-VP's
    assert all(method_value(c, "program") == "canvas" for name, cells in matched.items() if "ILM-VP" in name
               for c in cells)
    row = reference_row("later_work", ilm[0])
    assert dict(row.recipe) == {"epochs": "200", "optimizer": "adam", "lr": "0.01",
                                "schedule": "multistep 100/144 x0.1", "weight_decay": "0", "lam": "0"}
    autovp = next(r for r in reference_rows("later_work") if r.name == "AutoVP (ICLR 2024) resnet18 -> cifar10")
    assert dict(autovp.recipe)["optimizer"] == "not stated" and autovp.key[6:9] == ("", "88", "learned")
