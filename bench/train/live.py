"""The trainer's side of a cell's live marker (`bench.cell_lock`): each cell's epochs finished, as they finish."""
from __future__ import annotations

from bench.cell_lock import CellLock
from bench.train.events import EpochEnded, Observer, Started


class LiveMarker(Observer):
    """Keeps the marker of every cell of a pack whose lock this process holds (`locks`: cell_id -> its lock)."""

    def __init__(self, locks: dict[str, CellLock]):
        self.locks = locks

    def on_start(self, event: Started) -> None:
        if event.cell.cell_id in self.locks:  # a resumed cell starts from the epochs its checkpoint holds
            self.locks[event.cell.cell_id].mark(event.resumed_from or 0)

    def on_epoch(self, event: EpochEnded) -> None:
        if event.cell.cell_id in self.locks:
            self.locks[event.cell.cell_id].mark(event.epoch, event.epochs)
