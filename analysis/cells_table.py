"""One tidy table of every cell of a grid, one row per cell: who it is (its spec), what it reached (the final
metrics), what it took (timing, compute, energy). `report` writes it as `cells.csv` / `cells.parquet`, and
`reprogbench export GRID` writes it alone: the table a notebook loads with `pandas.read_csv` (the long form a
plotting library or a statistics package wants, as benchopt's parquet or MLflow's `search_runs` give).

A nested field becomes a dotted column (`method.mask`, `hparams.lr`, `timing.train_s`); a list is written as its
JSON text, so every value is a scalar. A cell that has not finished is a row too, with its status and empty
figures. Reads only; never trains.
"""
from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analysis.errors import ReportError
from analysis.measures import cost_of
from analysis.results import CellResult
from analysis.table import original_of
from bench.files import atomic_write, write_text

TABLE_FORMATS = ("csv", "parquet")
STEM = "cells"
# the parts of a record that are figures of the whole cell (its history and split are left to result.json)
RECORD_PARTS = ("metrics", "timing", "throughput", "parameters", "energy", "memory", "environment")


def parquet_available() -> bool:
    """pandas writes parquet through pyarrow or fastparquet; without either, csv only."""
    return any(importlib.util.find_spec(m) is not None for m in ("pyarrow", "fastparquet"))


def check_format(fmt: str) -> str:
    fmt = fmt.strip().lower()
    if fmt not in TABLE_FORMATS:
        raise ReportError(f"--format {fmt!r}: give csv or parquet")
    if fmt == "parquet" and not parquet_available():
        raise ReportError("--format parquet needs pyarrow or fastparquet (`pip install pyarrow`); or give "
                          "--format csv")
    return fmt


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """{prefix.key.sub: scalar}: nested mappings as dotted names, lists as their JSON text."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(flatten(f"{prefix}.{key}" if prefix else str(key), sub))
        return out
    if isinstance(value, (list, tuple)):
        return {prefix: json.dumps(value)}
    return {prefix: value}


def spec_columns(result: CellResult) -> dict[str, Any]:
    """The cell's identity: grid, id, task, method and its parameters, original / backbone, seed, recipe."""
    cell = result.cell
    spec = cell.spec
    row = {"grid": cell.grid, "cell_id": cell.cell_id, "status": result.status, "name": cell.name,
           "task": cell.task, "method": cell.method, "method_label": cell.method_label,
           "original": original_of(cell), "backbone": cell.backbone, "seed": cell.seed,
           "depends_on": " ".join(cell.depends_on)}
    row.update(flatten("method", {k: v for k, v in spec["method"].items() if k != "name"}))
    row.update(flatten("backbone", {k: v for k, v in spec["backbone"].items() if k != "name"}))
    row.update(flatten("original", spec["original"] or {}))
    for key in sorted(set(spec) - {"method", "backbone", "original", "task", "seed"}):
        row.update(flatten(key, spec[key]))
    return row


def record_columns(result: CellResult) -> dict[str, Any]:
    """A finished cell's figures: final metrics, timing, throughput, parameters, energy, memory, environment,
    the compute the report charges it (and its unit), the split's sizes, when it ran."""
    record = result.record
    if record is None:
        return {"error": result.error or None}
    row: dict[str, Any] = {"source": result.source}
    for part in RECORD_PARTS:
        value = getattr(record, part)
        if value is not None:
            row.update(flatten(part, value.model_dump(mode="json")))
    cost = cost_of(record)
    row.update({"compute_h": cost.compute_h, "compute_unit": cost.unit,
                **flatten("split.sizes", record.split.get("sizes", {})),
                "started_at": record.started_at, "finished_at": record.finished_at,
                "mlflow_run_id": record.mlflow_run_id})
    return row


def cells_frame(results: list[CellResult]):
    """The tidy table as a pandas DataFrame: one row per cell in the grid's order, the spec's columns first."""
    import pandas as pd

    # object columns keep each value as the record holds it: an integer with a gap (a pending cell) is still `8`,
    # not `8.0`, and a float `0.0` is not turned into `0`
    spec = pd.DataFrame([spec_columns(r) for r in results], dtype=object)
    figures = pd.DataFrame([record_columns(r) for r in results], dtype=object)
    return pd.concat([spec, figures], axis=1)


def _one_type_per_column(frame) -> None:
    """Parquet wants one type per column: a value that is a number in one cell and a word in another is written
    as text (numbers of both kinds are one: parquet holds them as floats)."""
    for column in frame.columns:
        kinds = {"number" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v).__name__
                 for v in frame[column] if v is not None}
        if len(kinds) > 1:
            frame[column] = frame[column].map(lambda v: v if v is None else str(v))


def write_cells(results: list[CellResult], path: Path, fmt: str) -> Path:
    frame = cells_frame(results)
    if fmt == "parquet":
        _one_type_per_column(frame)
        atomic_write(path, lambda f: frame.to_parquet(f, index=False))
    else:
        write_text(path, frame.to_csv(index=False))
    return path
