"""Result records -> text tables (for `ls` and the end of `run`). Reads records only; never trains."""
from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from bench.cell_lock import live_state
from bench.files import cell_dir
from bench.grid import Cell, Grid
from bench.methods import METHODS
from bench.record import CellRecord, read_record
from bench.reference import reference_figure


def _status(record: CellRecord | None) -> str:
    return record.status if record else "pending"


def _live_status(record: CellRecord | None, directory: Path) -> str:
    """A cell not done that a process trains is `running (epoch k/n)`; one whose process is gone `interrupted`
    (its marker, `bench.cell_lock`, outlived it); otherwise its record's status."""
    return (None if record and record.done else live_state(directory)) or _status(record)


def original_of(cell: Cell) -> str:
    """What a cell starts from: `fashion_mnist/smallcnn` (an original model), `smallcnn (random init)`;
    `imagenet[preprocessing=thesis]/keras:VGG16` when it is fed other than its weights were trained on."""
    if METHODS.get(cell.method).makes_original:
        return "-"
    preprocessing = cell.spec["backbone"].get("preprocessing")
    fed = f"[preprocessing={preprocessing}]" if preprocessing else ""
    return f"{cell.trained_on}{fed}/{cell.backbone}" if cell.trained_on else f"{cell.backbone}{fed} (random init)"


def _thesis(grid: Grid, cell: Cell) -> str | float:
    figure = reference_figure(grid.reference, cell)
    return figure["test_acc"] if figure else "-"


NOT_PREPARED = "not prepared"


def cells_table(grid: Grid, cells: list[Cell], results_root: Path, unprepared: list[Cell] = ()) -> str:
    """One row per cell with its status (and the published figure it is compared with); `unprepared` cells (an
    optional original's, whose inputs are not on this machine) are rows too, so a table is whole before `prepare`."""
    rows = []
    for cell in [*cells, *unprepared]:
        directory = cell_dir(results_root, grid.name, cell.cell_id)
        record = read_record(directory)
        status = NOT_PREPARED if cell.skip_reason and record is None else _live_status(record, directory)
        row = [cell.cell_id, status, cell.method_label, original_of(cell), cell.task, cell.seed,
               ",".join(cell.depends_on) or "-"]
        rows.append(row + ([_thesis(grid, cell)] if grid.reference else []))
    counts = {s: sum(r[1].split(" (")[0] == s for r in rows)
              for s in ("done", "running", "interrupted", "pending", "failed", NOT_PREPARED)}
    summary = f"{grid.name}: {len(rows)} cells: " + ", ".join(f"{n} {s}" for s, n in counts.items()
                                                            if n or s not in (NOT_PREPARED, "running", "interrupted"))
    headers = ["cell_id", "status", "method", "original", "task", "seed", "depends on"]
    if grid.reference:
        headers.append("thesis test %" if grid.reference.startswith("thesis") else "published test %")
    return tabulate(rows, headers=headers) + "\n" + summary


def results_table(grid: Grid, cells: list[Cell], results_root: Path) -> str:
    rows = []
    for cell in cells:
        record = read_record(cell_dir(results_root, grid.name, cell.cell_id))
        if record and record.done:
            m, t = record.metrics, record.timing
            rows.append([cell.cell_id, cell.name, m.val_acc, m.test_acc, t.train_s, t.total_s,
                         record.parameters.trainable])
        else:
            rows.append([cell.cell_id, cell.name, None, None, None, None, _status(record)])
    return tabulate(rows, headers=["cell_id", "cell", "val acc %", "test acc %", "train s", "total s",
                                   "trainable params"], floatfmt=".2f", missingval="-")
