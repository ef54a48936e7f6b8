"""A launch's progress weighted by the work known before it starts: each cell's training images x epochs, so the
ETA is right when cells differ in size. On a terminal a tqdm bar (the running cells in its postfix); otherwise a
plain line per cell step (start, end) with work done / total and the ETA, which a log file or a pipe can keep."""
from __future__ import annotations

import sys
import time
from typing import Optional

from tqdm import tqdm

from bench.grid import Cell

# a task's train-set size is only known once its files are read; a cell without `split.max_train` is counted as
# this many images per epoch (a stated estimate: the ETA is then right only between cells of such tasks)
ESTIMATED_TRAIN_IMAGES = 10_000


def cell_work(cell: Cell) -> int:
    """Images x epochs the cell trains on: `split.max_train` (else `ESTIMATED_TRAIN_IMAGES`) x `hparams.epochs`.
    A pretrain cell and its downstream cells are cells of their own: each counts its own training."""
    images = (cell.spec.get("split") or {}).get("max_train") or ESTIMATED_TRAIN_IMAGES
    return int(images) * int(cell.spec["hparams"]["epochs"])


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class WorkProgress:
    """What `launch.wave_runner` tells as cells start and end; `disable` on other ranks than 0."""

    def __init__(self, cells: list[Cell], name: str, disable: bool = False, terminal: Optional[bool] = None):
        self.work = {c.cell_id: cell_work(c) for c in cells}
        self.total, self.done, self.name, self.disable = sum(self.work.values()), 0, name, disable
        self.running: dict[str, str] = {}  # cell_id -> name, in start order
        self.started_at = time.monotonic()
        self.terminal = sys.stderr.isatty() and sys.stdout.isatty() if terminal is None else terminal
        self.bar = tqdm(total=self.total, desc=name, unit="img", unit_scale=True, dynamic_ncols=True,
                        disable=disable or not self.terminal)

    def eta(self) -> Optional[float]:
        """Seconds left at the pace of the work done so far; None before any."""
        if not self.done:
            return None
        return (time.monotonic() - self.started_at) / self.done * (self.total - self.done)

    def write(self, line: str) -> None:
        if not self.disable:
            tqdm.write(line) if self.terminal else print(line, flush=True)

    def start(self, cells: list[Cell]) -> None:
        for cell in cells:
            self.running[cell.cell_id] = cell.name
            self._step("start", cell)
        self._postfix()

    def finish(self, cell: Cell) -> None:
        self.running.pop(cell.cell_id, None)
        work = self.work.get(cell.cell_id, 0)
        self.done += work
        self.bar.update(work)
        self._step("end", cell)
        self._postfix()

    def _step(self, what: str, cell: Cell) -> None:
        if self.terminal or self.disable:
            return
        eta = self.eta()
        print(f"progress {self.name}: {what:<5} {cell.cell_id} {cell.name}  work {self.done}/{self.total} img x epoch "
              f"({100 * self.done / max(self.total, 1):.0f}%)  ETA {'?' if eta is None else _duration(eta)}",
              flush=True)

    def _postfix(self) -> None:
        if self.terminal and not self.disable:
            self.bar.set_postfix_str(", ".join(self.running.values()) or "-", refresh=True)

    def close(self) -> None:
        self.bar.close()
