"""The thesis's tables rebuilt from our runs: each published row beside what our cells measured, and the
difference. Rows we have not run yet are shown as missing, rows a grid cannot run with its stated reason."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from analysis.render import Column, Table
from analysis.results import Setup
from analysis.stats import Stat, difference, mean, summarize
from bench.grid import Cell, Grid
from bench.reference import ORIGINAL_MODELS, ReferenceRow, method_value, reference_rows, row_key

TITLES = {
    "thesis_table_3_1": "Thesis Table 3.1: adversarial reprogramming (Elsayed et al.), ours beside the thesis",
    "thesis_table_5_1": "Thesis Table 5.1: linear probe on frozen ImageNet backbones and from scratch, ours beside "
                        "the thesis",
    ORIGINAL_MODELS: "Thesis Table 3.1 footnotes 3-6: the original models, ours beside the thesis",
    "later_work": "Later work (ILM-VP, AutoVP; ImageNet ResNet-18 -> CIFAR): ours beside the published figures",
}


NOT_STATED = "not stated"
SAME_RECIPE = "as published"


def cell_recipe(cell) -> dict[str, str]:
    """The cell's training recipe in the terms of later_work.csv's recipe columns."""
    hp = cell.spec["hparams"]
    marks = hp.get("lr_milestones", "")
    schedule = f"multistep {marks} x{hp.get('lr_gamma', 0.1):g}" if marks else "constant"
    lam = method_value(cell, "lam")
    return {"epochs": str(hp["epochs"]), "optimizer": hp["optimizer"], "lr": f"{hp['lr']:g}", "schedule": schedule,
            "weight_decay": f"{hp['weight_decay']:g}", "lam": f"{lam or 0:g}"}


def _same(ours: str, theirs: str) -> bool:
    try:  # numbers by value: the CSV's "0.01" is the spec's 1.0e-2
        return float(ours) == float(theirs)
    except ValueError:
        return ours == theirs


def recipe_differences(row: ReferenceRow, cell) -> Optional[str]:
    """Where the cell's recipe differs from the paper's ("epochs 10 vs 200; ..."), `as published` where it does
    not, None where the table states no recipe; what the paper does not state is listed apart, not as a match."""
    if not row.recipe:
        return None
    ours = cell_recipe(cell)
    differs = [f"{k} {ours[k]} vs {v}" for k, v in row.recipe if v != NOT_STATED and not _same(ours[k], v)]
    unknown = [k for k, v in row.recipe if v == NOT_STATED]
    text = "; ".join(differs) if differs else SAME_RECIPE
    return text + (f" ({', '.join(unknown)} {NOT_STATED})" if unknown else "")


@dataclass
class Compared:
    """One published row and one of our setups that reproduces it (None: none does)."""

    row: ReferenceRow
    setup: Optional[Setup]
    status: str
    train_acc: Optional[Stat] = None
    test_acc: Optional[Stat] = None
    waiting: Optional[Cell] = None  # no setup yet: the cell, not prepared here, that will reproduce the row

    @property
    def cell(self) -> Optional[Cell]:
        return self.setup.cell if self.setup is not None else self.waiting

    @property
    def ours(self) -> str:
        cell = self.cell
        if cell is None:
            return ""
        preprocessing = cell.spec["backbone"].get("preprocessing")  # e.g. the thesis's, beside the backbone's own
        return f"{cell.method_label} {cell.backbone}" + (f"[preprocessing={preprocessing}]" if preprocessing else "")


def compare(grid: Grid, setups: list[Setup]) -> list[Compared]:
    """Every row of the grid's reference table, in the thesis's order; the original models the grid pretrains."""
    matched: dict[tuple, list[Setup]] = {}
    for s in setups:
        key = row_key(grid.reference, s.cell)
        if key is not None:
            matched.setdefault(key, []).append(s)
    pretrained = {s.cell.task for s in setups if s.method.makes_original}
    out = []
    for row in reference_rows(grid.reference):
        if row.key[0] == ORIGINAL_MODELS and row.key[1] not in pretrained:
            continue  # an original model this grid does not make
        found = matched.get(row.key, [])
        if not found:
            why = grid.not_run.get(row.name)
            waiting = [c for c in grid.unprepared if row_key(grid.reference, c) == row.key]
            if row.recipe and waiting and not why:  # each cell that will run it, with how its recipe differs
                out += [Compared(row, None, c.skip_reason, waiting=c) for c in waiting]
                continue
            status = (f"not run: {why}" if why else waiting[0].skip_reason if waiting
                      else "missing: no cell of this grid")
            out.append(Compared(row, None, status))
        for s in found:
            records = [r.record for r in s.done]
            out.append(Compared(row, s, s.status, summarize(r.metrics.train_acc for r in records),
                                summarize(r.metrics.test_acc for r in records)))
    return out


def thesis_tables(grid: Grid, compared: list[Compared]) -> list[Table]:
    tables: dict[str, list[Compared]] = {}
    for c in compared:
        tables.setdefault(c.row.key[0], []).append(c)
    out = []
    for name, rows in tables.items():
        labels = [label for label, _ in rows[0].row.labels]
        them = "thesis" if name.startswith("thesis") or name == ORIGINAL_MODELS else "published"
        with_recipe = any(c.row.recipe for c in rows)  # later work states its recipe: say where ours differs
        columns = [Column(label) for label in labels] + [
            Column("ours"), Column("status"), Column(f"{them} train %", ".2f"), Column("ours train %", ".2f", True),
            Column(f"{them} test %", ".2f"), Column("ours test %", ".2f", True),
            Column(f"Δ test (ours − {them})", "+.2f"), Column("cells")] + (
            [Column("recipe (ours vs paper)")] if with_recipe else [])
        body = [[value for _, value in c.row.labels] + [
            c.ours or None, c.status, c.row.train_acc, c.train_acc, c.row.test_acc, c.test_acc,
            difference(mean(c.test_acc), c.row.test_acc),
            " ".join(r.cell.cell_id for r in c.setup.results) if c.setup
            else c.waiting.cell_id if c.waiting else None] + (
            [recipe_differences(c.row, c.cell) if c.cell else None] if with_recipe else []) for c in rows]
        done = sum(c.test_acc is not None for c in rows)
        notes = [f"{done} of {len(rows)} row(s) with a result; ours: mean ± sd over the seeds that finished; "
                 f"Δ = our mean test accuracy − the {them} figure"]
        if with_recipe:
            notes.append(f"recipe: where our cell's epochs, optimizer, lr, schedule, weight decay or λ differ from "
                         f"the paper's (bench/reference/{name}.csv); '{SAME_RECIPE}' where none does; a row whose "
                         "recipe differs is not like for like")
        out.append(Table(TITLES.get(name, name), name, columns, body, notes))
    return out


def side_by_side(as_ran: str, compared: list[Compared], variant: Grid, variant_compared: list[Compared]
                 ) -> Table:
    """Each published row with the cells of two grids that reproduce it, the recipe as it ran (`as_ran`, the grid
    `variant.compare_with` names) and the variant: the published figure, then each grid's test accuracy and Δ.

    A row with more than one cell per grid (one backbone with two preprocessings) pairs them in grid order, which
    both grids share when the variant keeps the originals' order; the `ours` columns say which cell is which.
    """
    first, second, left, right = as_ran, variant.name, compared, variant_compared

    def by_row(rows: list[Compared]) -> dict[tuple, list[Compared]]:
        out: dict[tuple, list[Compared]] = {}
        for c in rows:
            if c.row.key[0] != ORIGINAL_MODELS:  # the originals are the grids' own, not Table 5.1's
                out.setdefault(c.row.key, []).append(c)
        return out

    a, b = by_row(left), by_row(right)
    rows = [c.row for c in left if c.row.key[0] != ORIGINAL_MODELS]
    rows += [c.row for c in right if c.row.key[0] != ORIGINAL_MODELS and c.row.key not in a]
    seen: set[tuple] = set()
    body = []
    for row in rows:
        if row.key in seen:
            continue
        seen.add(row.key)
        ours_a, ours_b = a.get(row.key, []), b.get(row.key, [])
        for i in range(max(len(ours_a), len(ours_b))):
            x = ours_a[i] if i < len(ours_a) else None
            y = ours_b[i] if i < len(ours_b) else None
            cells = []
            for c in (x, y):
                cells += [(c.ours or c.status) if c else "no cell", c.test_acc if c else None,
                          difference(mean(c.test_acc), row.test_acc) if c else None]
            body.append([value for _, value in row.labels] + [row.test_acc] + cells)
    labels = [label for label, _ in rows[0].labels] if rows else []
    columns = [Column(label) for label in labels] + [Column("thesis test %", ".2f")]
    for name in (first, second):
        columns += [Column(f"{name}: ours"), Column(f"{name} test %", ".2f", True),
                    Column(f"{name} Δ test", "+.2f")]
    notes = [f"{variant.name} differs from {variant.compare_with}: " + "; ".join(variant.differs),
             "Δ = that grid's mean test accuracy − the thesis's figure; a row without a cell in a grid says so"]
    return Table(f"{first} beside {second}: the thesis's figures, the recipe as it ran and as corrected",
                 f"{first}_vs_{second}", columns, body, notes)
