"""Progress inside an epoch, so a slow cell is never silent for minutes. On a terminal, a tqdm bar over the
epoch's batches (under the grid's bar, gone when the epoch ends); otherwise a plain `batch k/n` line every
`REPROGBENCH_PROGRESS_EVERY_S` seconds (default 30). Rank 0 only. A clock read per batch and no tensor read (no
device sync), so the hot loop keeps its pace."""
from __future__ import annotations

import os
import sys
import time
from typing import Optional, TextIO

from tqdm import tqdm

EVERY_S_ENV = "REPROGBENCH_PROGRESS_EVERY_S"
DEFAULT_EVERY_S = 30.0


class BadProgressSetting(ValueError):
    """$REPROGBENCH_PROGRESS_EVERY_S is not a number of seconds >= 0."""


def progress_every_s() -> float:
    """Seconds between two in-epoch lines; the CLI checks it before anything runs."""
    raw = os.environ.get(EVERY_S_ENV, "")
    try:
        every = float(raw) if raw.strip() else DEFAULT_EVERY_S
    except ValueError:
        every = -1.0
    if not every >= 0:  # NaN too
        raise BadProgressSetting(f"${EVERY_S_ENV}={raw!r} is not a number of seconds >= 0: set it to e.g. 30 "
                                 f"(a line every 30 s inside an epoch), or unset it")
    return every


class BatchProgress:
    def __init__(self, label: str, epoch: int, batches: int, rank: int, terminal: Optional[bool] = None,
                 file: Optional[TextIO] = None):
        self.label, self.epoch, self.batches = label, epoch, batches
        self.every = progress_every_s()
        self.enabled = rank == 0
        self.last = time.monotonic()
        terminal = sys.stdout.isatty() and sys.stderr.isatty() if terminal is None else terminal
        self.bar = tqdm(total=batches, desc=f"  {label}  epoch {epoch + 1}", unit="batch", leave=False,
                        position=1, dynamic_ncols=True, file=file) if self.enabled and terminal else None

    def step(self, k: int) -> None:
        """After batch `k` (1-based) of the epoch."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(k - self.bar.n)
            return
        if k >= self.batches:
            return
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            print(f"  {self.label}  epoch {self.epoch + 1}  batch {k}/{self.batches}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
