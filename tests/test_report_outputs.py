"""`reprogbench export GRID` and the `cells.csv` / `cells.parquet` that `report` writes: one row per cell of a
tiny grid run through the real CLI, every value equal to the cell's record (or empty for a cell not run)."""
from __future__ import annotations

import csv
import json

import pytest
from cli_helper import cli

from analysis.cells_table import RECORD_PARTS, flatten
from bench.files import cell_dir
from bench.grid import load_grid
from bench.record import read_record
from launch.cli import main

# A digits original reprogrammed for counting squares, beside from-scratch; the linear probe is left unrun so
# the table shows a pending row too. One epoch, 200 images: seconds a cell.
GRID = """
name: export_tiny
originals:
  - {backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 1}}
tasks: [squares]
methods:
  - {name: ar, input_size: 8, hparams: {lr: 0.05}}
  - {name: linear_probe}
  - {name: scratch}
hparams: {batch_size: 64, epochs: 1}
split: {max_train: 200}
seeds: [0]
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    grid_path = root / "export_tiny.yaml"
    grid_path.write_text(GRID)
    results = root / "results"
    for method in ("ar", "scratch"):
        proc = cli("run", grid_path, "--results", results, "--no-tracking", "--filter", f"method={method}")
        assert proc.returncode == 0, proc.stderr[-3000:]
    grid = load_grid(grid_path)
    records = {c.cell_id: read_record(cell_dir(results, grid.name, c.cell_id)) for c in grid.cells}
    return {"grid": grid, "grid_path": grid_path, "results": results, "records": records}


def text(value) -> str:
    """A value as the CSV holds it: empty for None, a list as its JSON."""
    if value is None:
        return ""
    return json.dumps(value) if isinstance(value, list) else str(value)


def expected_figures(record) -> dict:
    out = {}
    for part in RECORD_PARTS:
        out.update(flatten(part, getattr(record, part).model_dump(mode="json")))
    return out


def read_rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_export_writes_one_row_per_cell_equal_to_its_record(finished, tmp_path):
    out = tmp_path / "table.csv"
    proc = cli("export", finished["grid_path"], "--results", finished["results"], "--no-tracking", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"export_tiny: wrote 4 cell(s) (3 done, 1 not) to {out}" in proc.stdout
    rows = read_rows(out)
    grid = finished["grid"]
    assert [r["cell_id"] for r in rows] == [c.cell_id for c in grid.cells]  # every cell, in the grid's order
    for row, cell in zip(rows, grid.cells, strict=True):
        assert (row["grid"], row["task"], row["method"], row["backbone"], row["seed"]) == (
            "export_tiny", cell.task, cell.method, cell.backbone, str(cell.seed))
        for key, value in cell.spec["method"].items():  # the method's parameters, one column each
            assert row["method" if key == "name" else f"method.{key}"] == text(value)
        for key, value in cell.spec["hparams"].items():
            assert row[f"hparams.{key}"] == text(value)
        assert row["original.trained_on"] == text((cell.spec["original"] or {}).get("trained_on"))
        record = finished["records"][cell.cell_id]
        if cell.method == "linear_probe":
            assert record is None and row["status"] == "pending"
            assert row["metrics.test_acc"] == row["timing.total_s"] == row["energy.joules"] == ""
            continue
        assert row["status"] == "done" and row["source"] == "record"
        figures = expected_figures(record)
        assert {"metrics.test_acc", "timing.total_s", "energy.joules", "parameters.trainable"} <= set(figures)
        assert {k: row[k] for k in figures} == {k: text(v) for k, v in figures.items()}
        env = record.environment
        assert float(row["compute_h"]) == pytest.approx(
            record.timing.total_s * env.world_size * env.torch_threads / 3600)
        assert row["split.sizes.train"] == "200"


@pytest.mark.slow
def test_export_parquet_holds_the_same_values_as_numbers(finished, tmp_path):
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    proc = cli("export", finished["grid_path"], "--results", finished["results"], "--no-tracking", "--format",
               "parquet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    frame = pandas.read_parquet(finished["results"] / "export_tiny" / "cells.parquet")
    assert list(frame["cell_id"]) == [c.cell_id for c in finished["grid"].cells]
    for _, row in frame.iterrows():
        record = finished["records"][row["cell_id"]]
        if record is None:
            assert row["status"] == "pending" and pandas.isna(row["metrics.test_acc"])
            continue
        assert row["metrics.test_acc"] == record.metrics.test_acc
        assert row["timing.total_s"] == record.timing.total_s
        assert row["energy.joules"] == record.energy.joules
        assert row["parameters.trainable"] == record.parameters.trainable


@pytest.mark.slow
def test_report_writes_the_same_table_beside_its_other_files(finished, tmp_path):
    out = tmp_path / "report"
    proc = cli("report", finished["grid_path"], "--results", finished["results"], "--no-tracking", "--out", out,
               "--format", "csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    exported = tmp_path / "exported.csv"
    assert cli("export", finished["grid_path"], "--results", finished["results"], "--no-tracking", "--out",
               exported).returncode == 0
    assert read_rows(out / "cells.csv") == read_rows(exported)
    assert not (out / "cells.parquet").exists()  # not asked for


@pytest.mark.parametrize("args, needle", [
    (["--format", "xlsx"], "--format 'xlsx': give csv or parquet"),
    (["--out", "t.csv", "--format", "parquet"], "--format parquet but --out t.csv ends in .csv"),
])
def test_bad_export_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results"
    assert main(["export", "demo", "--results", str(results), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reprogbench: error: ") and needle in err[0], err
    assert list(tmp_path.iterdir()) == []  # no results folder, no table
