"""Published figures the thesis grids are compared with, looked up per cell.

The CSV files are the thesis's own tables (Kloberdanz 2020: Table 3.1, its footnotes 3-6 on the original models,
Table 5.1), copied verbatim with a comment line saying where each figure was read.
"""
from __future__ import annotations

import csv
from functools import cache
from pathlib import Path
from typing import Optional

REFERENCE_DIR = Path(__file__).parent
# grid `reference:` name -> what the thesis reports for it
REFERENCES = ("thesis_table_3_1", "thesis_experiment_2", "thesis_table_5_1")
ORIGINAL_MODELS = "thesis_original_models"
# our dataset names -> the column prefixes of Table 5.1
TABLE_5_1_TASKS = {"caltech101": "caltech101", "caltech256_reduced": "caltech256r"}


def list_references() -> list[str]:
    return list(REFERENCES)


@cache
def read_table(name: str) -> tuple[dict, ...]:
    lines = (REFERENCE_DIR / f"{name}.csv").read_text().splitlines()
    return tuple(csv.DictReader(line for line in lines if not line.startswith("#")))


def _figure(row: dict, train_key: str, test_key: str, source: str) -> dict:
    return {"train_acc": float(row[train_key]), "test_acc": float(row[test_key]), "source": source}


def thesis_name(backbone: str) -> Optional[str]:
    """The Keras model of Table 5.1 that our backbone stands in for (None: not one of them)."""
    from bench.models.thesis_nets import THESIS_BACKBONES

    return next((keras for keras, (ours, _) in THESIS_BACKBONES.items() if ours == backbone), None)


def reference_figure(reference: Optional[str], cell) -> Optional[dict]:
    """The thesis's figure for this cell: {train_acc, test_acc, source}, or None where it reports none."""
    if reference is None:
        return None
    if cell.method == "pretrain":
        row = next((r for r in read_table(ORIGINAL_MODELS) if r["original_task"] == cell.task), None)
        return _figure(row, "train_acc", "test_acc", "thesis Table 3.1 footnotes 3-6") if row else None
    if reference == "thesis_table_3_1" and cell.method == "ar":
        row = next((r for r in read_table(reference)
                    if (r["original_task"], r["new_task"]) == (cell.trained_on, cell.task)), None)
        return _figure(row, "train_acc", "test_acc", "thesis Table 3.1") if row else None
    if reference == "thesis_table_5_1" and cell.task in TABLE_5_1_TASKS:
        prefix = TABLE_5_1_TASKS[cell.task]
        keras = "from_scratch" if cell.method == "scratch" else thesis_name(cell.backbone)
        row = next((r for r in read_table(reference) if r["backbone"] == keras), None)
        if row is None or cell.method not in ("linear_probe", "scratch"):
            return None
        return _figure(row, f"{prefix}_train", f"{prefix}_test", f"thesis Table 5.1 ({keras})")
    return None  # thesis_experiment_2: the thesis reports no numbers, only that no tweak beat Table 3.1
