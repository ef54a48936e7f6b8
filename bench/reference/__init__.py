"""Published figures the grids are compared with: a registry of reference tables, looked up per cell.

A table is an entry of `REFERENCE_TABLES` (bench/reference/tables.py, or any module of this package: found by
discovery): its CSV file here, its rows, and how a cell finds its row (`cell_key`). What a row compares lives in
its CSV (e.g. a `method` column naming the method whose cells reproduce it), not in this code. The CSV files are
the published tables (Kloberdanz 2020: Table 3.1, its footnotes 3-6 on the original models, Table 5.1; later
work), copied with a comment line saying where each figure was read. tests/test_contract_reference_tables.py
checks every entry.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Optional

from bench.registry import Registry

REFERENCE_DIR = Path(__file__).parent
# the thesis's footnotes 3-6: the original models, which the pretrain cells of a thesis grid are compared with
ORIGINAL_MODELS = "thesis_original_models"


@cache
def read_table(name: str) -> tuple[dict, ...]:
    lines = (REFERENCE_DIR / f"{name}.csv").read_text().splitlines()
    return tuple(csv.DictReader(line for line in lines if not line.startswith("#")))


@dataclass(frozen=True)
class ReferenceRow:
    """One row of a published table, as our cells are matched with it."""

    table: str  # where it was read, e.g. "thesis Table 3.1"
    key: tuple  # what a cell matches it by (`row_key`); key[0] is the table's registry name
    name: str  # how the row is named: a grid's `not_run` names rows this way
    panel: str  # rows drawn in one panel of the bar chart (Table 5.1: one per dataset)
    train_acc: Optional[float]  # None: the work reports none
    test_acc: float
    labels: tuple = ()  # (column, value) pairs that identify the row in a rebuilt table
    # (hparam, value) pairs of the recipe the paper trained with (later_work.csv's epochs, optimizer, lr, ...):
    # the report marks a cell whose recipe differs; () where the table states none
    recipe: tuple = ()

    def figure(self) -> dict:
        return {"train_acc": self.train_acc, "test_acc": self.test_acc, "source": self.table}


class ReferenceTable:
    """A published table a grid names in `reference:`; `name` is its registry name and its CSV's stem."""

    name: ClassVar[str]
    # True: the thesis's own table: its grids' pretrain cells are compared with the original models of footnotes
    # 3-6, and MLflow shows its figures as `thesis.*` (else `reference.*`)
    thesis: ClassVar[bool] = False
    # the file the figures are read from, in bench/reference ("": the work reports no figures, only a note)
    file: ClassVar[str] = ""

    def rows(self) -> list[ReferenceRow]:
        return []

    def cell_key(self, cell) -> Optional[tuple]:
        """The key of the row `cell` reproduces (None: the table has no such row)."""
        return None


REFERENCE_TABLES: Registry[ReferenceTable] = Registry("reference table", package="bench.reference")


def register_reference_table(cls: type[ReferenceTable]) -> type[ReferenceTable]:
    REFERENCE_TABLES.register(cls.name, cls(), file=cls.file, thesis=cls.thesis)
    return cls


def list_references() -> list[str]:
    """The tables a grid may name, in the order they are declared (the thesis's, then later work)."""
    return REFERENCE_TABLES.names_in_registration_order()


def method_of(cell) -> Any:
    from bench.methods import METHODS

    return METHODS.get(cell.method)


def method_value(cell, name: str) -> Any:
    """A parameter of the cell's method as it runs: given in the spec, else the method's default (None: none)."""
    given = cell.spec["method"]
    if name in given:
        return given[name]
    field = method_of(cell).Params.model_fields.get(name)
    return field.default if field is not None else None


def _original_model_rows() -> list[ReferenceRow]:
    return [ReferenceRow("thesis Table 3.1 footnotes 3-6", (ORIGINAL_MODELS, r["original_task"]), r["original_task"],
                         "original models", float(r["train_acc"]), float(r["test_acc"]),
                         (("original model", r["original_task"]),))
            for r in read_table(ORIGINAL_MODELS)]


def reference_rows(reference: Optional[str]) -> list[ReferenceRow]:
    """The published rows a grid with this `reference:` is compared with: the table's own rows, in its order,
    then, for a thesis table, the original models of footnotes 3-6 (which its pretrain cells are compared with)."""
    if reference is None:
        return []
    table = REFERENCE_TABLES.get(reference)
    return table.rows() + (_original_model_rows() if table.thesis else [])


def row_key(reference: Optional[str], cell) -> Optional[tuple]:
    """The key of the published row this cell reproduces (None: the table reports no such figure)."""
    if reference is None:
        return None
    table = REFERENCE_TABLES.get(reference)
    if table.thesis and method_of(cell).makes_original:
        return (ORIGINAL_MODELS, cell.task)
    return table.cell_key(cell)


def thesis_name(backbone: str) -> Optional[str]:
    """The Keras model of Table 5.1 that our backbone is (`keras:VGG16`) or stands in for (None: not one of them)."""
    from bench.models.thesis_nets import THESIS_BACKBONES

    return next((keras for keras, (ours, _) in THESIS_BACKBONES.items() if backbone in (ours, f"keras:{keras}")),
                None)


def reference_row(reference: Optional[str], cell) -> Optional[ReferenceRow]:
    """The published row this cell is compared with, or None where the table reports none."""
    key = row_key(reference, cell)
    if key is None:
        return None
    return next((r for r in reference_rows(reference) if r.key == key), None)


def reference_figure(reference: Optional[str], cell) -> Optional[dict]:
    """The published figure for this cell: {train_acc, test_acc, source}, or None where the table reports none."""
    row = reference_row(reference, cell)
    return row.figure() if row else None


def thesis_params(cell) -> dict[str, object]:
    """The figure as MLflow params (`thesis.test_acc`, ...), so the UI shows it beside each run; {} if none."""
    reference = getattr(cell, "reference", None)
    figure = reference_figure(reference, cell)
    if not figure:
        return {}
    prefix = "thesis" if REFERENCE_TABLES.get(reference).thesis else "reference"
    return {f"{prefix}.{k}": v for k, v in figure.items() if v is not None}
