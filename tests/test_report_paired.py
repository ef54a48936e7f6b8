"""Comparisons with their spread: a difference paired by seed with its Student-t interval, and the label-mapping
table's "best mapping" picked on validation, not on test. Tables built from a real grid's cells and records that
carry only the two figures these tables read (no training: the arithmetic is the point)."""
from __future__ import annotations

import csv
import io
import math
import statistics
from types import SimpleNamespace

import pytest

from analysis.methods import label_map_table
from analysis.render import to_csv, to_markdown
from analysis.results import CellResult, group_setups
from analysis.stats import paired_difference
from bench.grid import load_grid

GRID = """
name: paired_tiny
originals: [{backbone: test_tinycnn, trained_on: digits}]
tasks: [squares]
methods:
  - {name: ar, input_size: 8, label_map: [first_k, frequency, iterative]}
seeds: [0, 1, 2]
"""
# (label map, seed) -> (test acc, val acc). frequency has the higher test gain, iterative the higher val gain.
FIGURES = {
    ("first_k", 0): (20.0, 21.0), ("first_k", 1): (22.0, 20.0), ("first_k", 2): (24.0, 22.0),
    ("frequency", 0): (30.0, 21.5), ("frequency", 1): (31.0, 20.5), ("frequency", 2): (35.0, 22.5),
    ("iterative", 0): (21.0, 30.0), ("iterative", 1): (24.0, 31.0), ("iterative", 2): (27.0, 29.0),
}
T_975_2 = 4.302652729911275  # Student's t, 97.5% quantile, 2 degrees of freedom (tables; scipy gives the same)


def test_a_paired_difference_is_the_mean_of_per_seed_differences_with_a_t_interval():
    got = paired_difference({0: 3.0, 1: 5.0, 2: 10.0, 7: 1.0}, {0: 1.0, 1: 2.0, 2: 4.0, 8: 0.0})
    diffs = [2.0, 3.0, 6.0]  # only the seeds both have
    half = T_975_2 * statistics.stdev(diffs) / math.sqrt(3)
    assert (got.mean, got.n) == (pytest.approx(11 / 3), 3)
    assert got.sd == pytest.approx(statistics.stdev(diffs))
    assert (got.low, got.high) == (pytest.approx(11 / 3 - half), pytest.approx(11 / 3 + half))
    one = paired_difference({0: 3.0}, {0: 1.0, 1: 2.0})
    assert (one.mean, one.n, one.sd, one.low) == (2.0, 1, None, None)
    assert paired_difference({0: 3.0}, {1: 1.0}) is None and paired_difference({0: None}, {0: 1.0}) is None


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "paired_tiny.yaml"
    path.write_text(GRID)
    results = []
    for cell in load_grid(path).cells:
        label_map = cell.spec["method"].get("label_map")  # none: the original's pretrain cell
        test_acc, val_acc = FIGURES[(label_map, cell.seed)] if label_map else (90.0, 90.0)
        record = SimpleNamespace(metrics=SimpleNamespace(test_acc=test_acc, val_acc=val_acc))
        results.append(CellResult(cell, "done", record=record))
    return label_map_table(group_setups(results))


def test_each_mapping_carries_its_paired_difference_to_first_k(table):
    rows = {row[3]: row for row in table.rows}
    names = [c.name for c in table.columns]
    frequency = rows["frequency"][names.index("paired Δ [95% CI]")]
    assert (frequency.mean, frequency.n) == (pytest.approx(10.0), 3)  # differences 10, 9, 11
    assert frequency.high - frequency.low == pytest.approx(2 * T_975_2 * 1.0 / math.sqrt(3))
    assert "+10.00 [" in to_markdown(table) and "n=3" in to_markdown(table)
    header, *lines = csv.reader(io.StringIO(to_csv(table)))
    assert len(lines) == 2 and float(lines[[r[3] for r in lines].index("frequency")][
        header.index("paired Δ [95% CI] ci low")]) == pytest.approx(frequency.low)


def test_the_best_mapping_is_the_one_validation_picks(table):
    # frequency gains 10 test points but 0.5 val points; iterative gains 2 test points and 9 val points
    (best,) = [n for n in table.notes if "best validation accuracy" in n]
    assert "iterative" in best and "beat first_k by 2.00 test points" in best
