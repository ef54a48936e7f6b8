"""Published figures the thesis grids are compared with, looked up per cell.

The CSV files are the thesis's own tables (Kloberdanz 2020: Table 3.1, its footnotes 3-6 on the original models,
Table 5.1), copied verbatim with a comment line saying where each figure was read.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Optional

REFERENCE_DIR = Path(__file__).parent
# grid `reference:` name -> what the thesis reports for it
REFERENCES = ("thesis_table_3_1", "thesis_experiment_2", "thesis_table_5_1", "later_work")
THESIS = ("thesis_table_3_1", "thesis_experiment_2", "thesis_table_5_1")
# later work's figures (ILM-VP, AutoVP), matched by our ar cells on the same ImageNet backbone and task
LATER_WORK = "later_work"
ORIGINAL_MODELS = "thesis_original_models"
# our dataset names -> the column prefixes of Table 5.1
TABLE_5_1_TASKS = {"caltech101": "caltech101", "caltech256_reduced": "caltech256r"}


def list_references() -> list[str]:
    return list(REFERENCES)


@cache
def read_table(name: str) -> tuple[dict, ...]:
    lines = (REFERENCE_DIR / f"{name}.csv").read_text().splitlines()
    return tuple(csv.DictReader(line for line in lines if not line.startswith("#")))


@dataclass(frozen=True)
class ReferenceRow:
    """One row of a published table, as our cells are matched with it."""

    table: str  # where it was read, e.g. "thesis Table 3.1"
    key: tuple  # what a cell matches it by (`row_key`)
    name: str  # how the row is named: a grid's `not_run` names rows this way
    panel: str  # rows drawn in one panel of the bar chart (Table 5.1: one per dataset)
    train_acc: Optional[float]  # None: the work reports none
    test_acc: float
    labels: tuple = ()  # (column, value) pairs that identify the row in a rebuilt table

    def figure(self) -> dict:
        return {"train_acc": self.train_acc, "test_acc": self.test_acc, "source": self.table}


def _original_model_rows() -> list[ReferenceRow]:
    return [ReferenceRow("thesis Table 3.1 footnotes 3-6", (ORIGINAL_MODELS, r["original_task"]), r["original_task"],
                         "original models", float(r["train_acc"]), float(r["test_acc"]),
                         (("original model", r["original_task"]),))
            for r in read_table(ORIGINAL_MODELS)]


def _table_rows(reference: str) -> list[ReferenceRow]:
    if reference == "thesis_table_3_1":
        return [ReferenceRow("thesis Table 3.1", (reference, r["original_task"], r["new_task"]),
                             f"{r['original_task']} -> {r['new_task']}", "Table 3.1", float(r["train_acc"]),
                             float(r["test_acc"]), (("original", r["original_task"]), ("new task", r["new_task"])))
                for r in read_table(reference)]
    if reference == "thesis_table_5_1":
        return [ReferenceRow(f"thesis Table 5.1 ({r['backbone']})", (reference, r["backbone"], task),
                             r["backbone"], task, float(r[f"{prefix}_train"]), float(r[f"{prefix}_test"]),
                             (("backbone", r["backbone"]), ("new task", task)))
                for task, prefix in TABLE_5_1_TASKS.items() for r in read_table(reference)]
    if reference == LATER_WORK:
        return [ReferenceRow(f"{r['work']}", (reference, r["backbone"], r["task"], r["program"], r["label_map"]),
                             f"{r['work']} {r['backbone']} -> {r['task']}", r["task"], None, float(r["test_acc"]),
                             (("work", r["work"]), ("backbone", r["backbone"]), ("new task", r["task"]),
                              ("program", r["program"]), ("label map", r["label_map"])))
                for r in read_table(reference)]
    return []  # thesis_experiment_2: the thesis reports no numbers, only that no tweak beat Table 3.1


def reference_rows(reference: Optional[str]) -> list[ReferenceRow]:
    """The published rows a grid with this `reference:` is compared with: the table's own rows, in its order,
    then the original models of footnotes 3-6 (which any grid's pretrain cells are compared with)."""
    if reference is None:
        return []
    return _table_rows(reference) + (_original_model_rows() if reference in THESIS else [])


def row_key(reference: Optional[str], cell) -> Optional[tuple]:
    """The key of the published row this cell reproduces (None: the thesis reports no such figure)."""
    if reference is None:
        return None
    if reference == LATER_WORK:
        method = cell.spec["method"]
        if cell.method != "ar" or (cell.spec["original"] or {}).get("weights") is None:
            return None
        return (reference, cell.backbone, cell.task, method.get("program", "canvas"), method["label_map"])
    if cell.method == "pretrain":
        return (ORIGINAL_MODELS, cell.task)
    if reference == "thesis_table_3_1" and cell.method == "ar":
        return (reference, cell.trained_on, cell.task)
    if reference == "thesis_table_5_1" and cell.task in TABLE_5_1_TASKS and cell.method in ("linear_probe", "scratch"):
        keras = "from_scratch" if cell.method == "scratch" else thesis_name(cell.backbone)
        return (reference, keras, cell.task) if keras else None
    return None


def thesis_name(backbone: str) -> Optional[str]:
    """The Keras model of Table 5.1 that our backbone stands in for (None: not one of them)."""
    from bench.models.thesis_nets import THESIS_BACKBONES

    return next((keras for keras, (ours, _) in THESIS_BACKBONES.items() if ours == backbone), None)


def reference_figure(reference: Optional[str], cell) -> Optional[dict]:
    """The thesis's figure for this cell: {train_acc, test_acc, source}, or None where it reports none."""
    key = row_key(reference, cell)
    if key is None:
        return None
    row = next((r for r in reference_rows(reference) if r.key == key), None)
    return row.figure() if row else None


def thesis_params(cell) -> dict[str, object]:
    """The figure as MLflow params (`thesis.test_acc`, ...), so the UI shows it beside each run; {} if none."""
    reference = getattr(cell, "reference", None)
    figure = reference_figure(reference, cell)
    prefix = "reference" if reference == LATER_WORK else "thesis"
    return {f"{prefix}.{k}": v for k, v in figure.items() if v is not None} if figure else {}
