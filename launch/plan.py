"""`run --dry-run`: what `run` would start, printed and nothing else: the pending cells in their waves and packs,
and the work they add up to, in the order the local runner and the Slurm launcher take them.

The work is counted in epochs still to train (a cell resumed from its checkpoint counts only the rest): image
counts are known only once a dataset is read, and a dry run reads none.
"""
from __future__ import annotations

from dataclasses import dataclass

from bench.files import cell_dir
from bench.grid import Cell, Grid
from bench.record import cell_status
from launch.local import RunSettings, plan_packs, waves


@dataclass(frozen=True)
class PlannedCell:
    cell: Cell
    epochs: int  # what the spec asks for
    done_epochs: int  # what its checkpoint already holds

    @property
    def left(self) -> int:
        return max(self.epochs - self.done_epochs, 0)


def planned(cell: Cell, settings: RunSettings) -> PlannedCell:
    from bench.train import checkpoint_epoch

    epochs = int(cell.spec["hparams"].get("epochs", 0) or 0)
    return PlannedCell(cell, epochs, checkpoint_epoch(cell_dir(settings.results_root, cell.grid, cell.cell_id)))


def plan_lines(grid: Grid, cells: list[Cell], settings: RunSettings, launcher: str, workers: int) -> list[str]:
    """The dry run's report, a line per wave, pack and cell, ending with the totals."""
    pending = [c for c in cells if cell_status(cell_dir(settings.results_root, grid.name, c.cell_id)) != "done"]
    done = len(cells) - len(pending)
    lines = [f"dry run: nothing is started or written; {grid.name}: {len(cells)} cell(s) selected, {done} already "
             f"done, {len(pending)} to run ({launcher} launcher" + (f", {workers} workers" if workers > 1 else "")
             + ")"]
    total, packs = 0, 0
    for number, wave in enumerate(waves(pending), start=1):
        wave_packs = plan_packs(wave, settings)
        wave_work = [[planned(c, settings) for c in pack] for pack in wave_packs]
        epochs = sum(p.left for pack in wave_work for p in pack)
        lines.append(f"wave {number}: {len(wave)} cell(s) in {len(wave_packs)} pack(s), {epochs} epoch(s) to train"
                     + ("" if number == 1 else " (after the cells they need)"))
        for pack in wave_work:
            packs += 1
            shared = " sharing one backbone pass" if len(pack) > 1 else ""
            lines.append(f"  pack {packs}: {len(pack)} cell(s){shared}")
            for p in pack:
                resumed = f", resumes at epoch {p.done_epochs + 1}" if p.done_epochs else ""
                lines.append(f"    {p.cell.cell_id}  {p.cell.name}  ({p.left} of {p.epochs} epoch(s){resumed})")
        total += epochs
    where = "one Slurm array task per pack" if launcher.startswith("slurm") else "packs run one after another" + (
        f", {workers} at a time" if workers > 1 else "")
    lines.append(f"total: {len(pending)} cell(s), {packs} pack(s), {total} epoch(s) to train; {where}")
    return lines
