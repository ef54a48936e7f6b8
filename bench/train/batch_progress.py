"""A line inside long epochs so a slow cell is never silent for minutes: `batch k/n` every
`REPROGBENCH_PROGRESS_EVERY_S` seconds (default 30), from rank 0 only. A clock read per batch and no tensor
read (no device sync), so the hot loop keeps its pace."""
from __future__ import annotations

import os
import time

EVERY_S_ENV = "REPROGBENCH_PROGRESS_EVERY_S"
DEFAULT_EVERY_S = 30.0


class BatchProgress:
    def __init__(self, label: str, epoch: int, batches: int, rank: int):
        self.label, self.epoch, self.batches = label, epoch, batches
        self.every = float(os.environ.get(EVERY_S_ENV, DEFAULT_EVERY_S))
        self.enabled = rank == 0
        self.last = time.monotonic()

    def step(self, k: int) -> None:
        """After batch `k` (1-based) of the epoch."""
        if not self.enabled or k >= self.batches:
            return
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            print(f"  {self.label}  epoch {self.epoch + 1}  batch {k}/{self.batches}", flush=True)
