"""A cell's own state inside a pack (`Member`), its cost so far (`Clock`), and how a pack's cost is shared."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from bench.energy import EnergyMeter
from bench.grid import Cell
from bench.methods import MethodModel
from bench.record import PHASES


@dataclass
class Clock:
    """One cell's wall-clock by phase and the energy used over those phases (summed over ranks), carried
    across resumes so cost is counted once.

    A packed cell is charged its share (1/K) of each phase of the pack's wall-clock, and of its energy.
    """

    setup_s: float = 0.0
    features_s: float = 0.0
    compile_s: float = 0.0
    train_s: float = 0.0
    eval_s: float = 0.0
    train_images: int = 0
    queries: int = 0  # images sent through the backbone by a method that counts them (`MethodModel.pop_queries`)
    energy_j: float = 0.0
    energy_source: str = ""  # bench.energy: nvml | rapl | estimate ("a+b" if a resume changed it)

    def state(self) -> dict:
        return {**{k: getattr(self, k) for k in PHASES}, "train_images": self.train_images, "queries": self.queries,
                "energy_j": self.energy_j, "energy_source": self.energy_source}

    @property
    def total_s(self) -> float:
        return sum(getattr(self, k) for k in PHASES)


@dataclass
class Member:
    """One cell's own state inside a pack: its model, optimizer, record so far and run."""

    cell: Cell
    directory: Path
    model: MethodModel
    parameters: dict
    optimizer: Optional[torch.optim.Optimizer] = None
    clock: Clock = field(default_factory=Clock)
    history: list = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"epoch": 0, "val_acc": -1.0, "learned": None})
    start_epoch: int = 0
    resumed_from: Optional[int] = None
    # torch's intra-op threads when its checkpoint was saved (None: a fresh start, or a checkpoint older than the
    # field): another count sums in another order, so a resumed cell's figures differ in their last digits
    threads_before: Optional[int] = None
    rng: Optional[torch.Tensor] = None  # the global RNG state its checkpoint saved
    checkpoint_problems: list = field(default_factory=list)  # corrupt checkpoints skipped on resume (one line each)
    counts_queries: bool = False  # its model counts the images it sends through the backbone (black box)

    @property
    def learned(self) -> torch.nn.Module:
        return self.model.learned

    @property
    def hp(self) -> dict:
        return self.cell.spec["hparams"]

    def add_queries(self) -> None:
        """Move the images its model sent through the backbone since the last call onto its clock."""
        queries = self.model.pop_queries()
        if queries is not None:
            self.counts_queries = True
            self.clock.queries += queries


class PackTimer:
    """Laps of the pack's wall-clock and energy, each charged in equal shares to the members' clocks.

    `sum_ranks` adds a lap's energy over DDP ranks (every rank charges the same laps, so it is a collective
    call at the same point on each); the wall-clock is this rank's.
    """

    def __init__(self, members: list[Member], meter: Optional[EnergyMeter] = None,
                 sum_ranks: Optional[Callable[[float], float]] = None):
        self.members, self.meter, self.sum_ranks = members, meter, sum_ranks
        self._t, self._j = time.perf_counter(), self._joules()

    def _joules(self) -> float:
        return self.meter.joules() if self.meter is not None else 0.0

    def charge(self, phase: str) -> float:
        now, joules = time.perf_counter(), self._joules()
        elapsed, self._t = now - self._t, now
        used, self._j = joules - self._j, joules
        if self.sum_ranks is not None:
            used = self.sum_ranks(used)
        for m in self.members:
            setattr(m.clock, phase, getattr(m.clock, phase) + elapsed / len(self.members))
            m.clock.energy_j += used / len(self.members)
        return elapsed

    def skip(self) -> None:
        self._t, self._j = time.perf_counter(), self._joules()
