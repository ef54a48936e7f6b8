"""What the trainer tells whoever watches it: typed events, the `Observer` that receives them, and the console log.

Per cell of a pack: `Started` once its model is set up (resumed or not), `EpochEnded` after each epoch (its
checkpoint is on disk), then either `Ended` (its done record is written) or `Failed` (the pack stopped: an error,
a divergence or an interrupt). Before the done record is written each observer may `annotate` it (MLflow: the
run and whether it is synced). An observer is called on the main process only unless it says otherwise.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from bench.grid import Cell
from bench.record import CellRecord


@dataclass(frozen=True)
class Started:
    cell: Cell
    directory: Path
    pack_size: int
    device_type: str
    world_size: int
    resumed_from: int | None  # the epoch it resumes from; None: a fresh start
    threads_before: int | None = None  # torch threads of the epochs it resumes (None: unknown or a fresh start)


@dataclass(frozen=True)
class EpochEnded:
    cell: Cell
    epoch: int  # 1-based: the epoch that just finished
    epochs: int
    row: dict  # its history row (`bench.record.HistoryRow`'s on-disk form)
    best_val_acc: float  # the best validation accuracy so far (what selects the weights)


@dataclass(frozen=True)
class Ended:
    cell: Cell
    directory: Path
    record: CellRecord


@dataclass(frozen=True)
class Failed:
    cell: Cell
    error: BaseException
    interrupted: bool  # stopped by a signal or asked twice (KeyboardInterrupt): it resumes on a rerun


@dataclass(frozen=True)
class Compiled:
    """The pack's backbone was compiled (torch.compile) in `seconds`, before the first epoch."""

    backbone: str
    seconds: float


class Observer:
    """Receives the trainer's events; every method does nothing by default."""

    main_only: ClassVar[bool] = True  # False: called on every DDP rank

    def on_start(self, event: Started) -> None: ...

    def on_compiled(self, event: Compiled) -> None: ...

    def on_epoch(self, event: EpochEnded) -> None: ...

    def annotate(self, record: CellRecord) -> None:
        """Add what this observer knows to a done record before it is written."""

    def on_end(self, event: Ended) -> None: ...

    def on_failure(self, event: Failed) -> None: ...


class Observers:
    """The observers of one pack, in order, those meant for this process only."""

    def __init__(self, observers: Iterable[Observer], main: bool):
        self.observers = [o for o in observers if main or not o.main_only]

    def __getattr__(self, name: str) -> Callable:
        def call(*args) -> None:
            for observer in self.observers:
                getattr(observer, name)(*args)

        return call


class ConsoleLog(Observer):
    """The progress lines a launcher shows (through `write`, e.g. tqdm.write), from every rank."""

    main_only = False

    def __init__(self, write: Callable[[str], None]):
        self.write = write

    def on_start(self, event: Started) -> None:
        if event.resumed_from:
            self.write(f"  resuming {event.cell.name} from epoch {event.resumed_from}")
            now = torch.get_num_threads()
            if event.threads_before is not None and event.threads_before != now:
                self.write(f"  note: {event.cell.name} trained its first {event.resumed_from} epoch(s) with "
                           f"{event.threads_before} torch thread(s) and goes on with {now}: its figures will differ "
                           "in their last digits from an uninterrupted run (the same --workers keeps them equal)")

    def on_compiled(self, event: Compiled) -> None:
        self.write(f"  compiled {event.backbone} in {event.seconds:.1f}s")

    def on_epoch(self, event: EpochEnded) -> None:
        row = event.row
        self.write(f"  {event.cell.name}  epoch {event.epoch}/{event.epochs}  train loss {row['train_loss']:.3f} "
                   f"acc {row['train_acc']:.1f}%  val acc {row['val_acc']:.1f}%")
