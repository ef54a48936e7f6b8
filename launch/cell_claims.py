"""Which cells of a pack this launch may train: those whose lock (`bench.cell_lock`) it takes and that no other
launch finished meanwhile. A second launch of a grid still running skips the cells in progress and says so, so no
cell is trained (or logged to MLflow) twice (issue 19.3)."""
from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from bench.cell_lock import CellLock, describe_holder
from bench.grid import Cell
from bench.record import cell_status


def launcher_pid() -> int:
    """The launch this process trains for: its parent in a pool worker, else itself."""
    return os.getppid() if multiprocessing.parent_process() is not None else os.getpid()


def claim(cells: list[Cell], directories: list[Path]) -> tuple[dict[str, CellLock], list[tuple[Cell, str]]]:
    """-> (cell_id -> the lock taken, for the cells to train; (cell, why) for the cells to skip)."""
    locks: dict[str, CellLock] = {}
    skipped: list[tuple[Cell, str]] = []
    for cell, directory in zip(cells, directories, strict=True):
        lock = CellLock(directory, cell.spec.get("hparams", {}).get("epochs"), launcher_pid())
        holder = lock.acquire()
        if holder is not None:
            skipped.append((cell, describe_holder(cell.cell_id, holder)))
        elif cell_status(directory) == "done":  # listed pending when this launch started; finished since
            lock.release()
            skipped.append((cell, f"cell {cell.cell_id} was finished by another launch meanwhile; skipped"))
        else:
            locks[cell.cell_id] = lock
    return locks, skipped


def release(locks: dict[str, CellLock]) -> None:
    for lock in locks.values():
        lock.release()
