"""A request to stop training cleanly (Ctrl-C, SIGTERM), checked by the trainer at epoch boundaries.

Whoever catches the signal calls `request(signum)`; the trainer, after the epoch in progress has written its
checkpoint, raises `Interrupted`. The cell is then neither done nor failed: the same command resumes it.
"""
from __future__ import annotations

import signal
from typing import Optional

_requested: Optional[int] = None


class Interrupted(Exception):
    """Training stopped on request at an epoch boundary; every cell of the pack has its checkpoint on disk."""

    def __init__(self, signum: int, epoch: int):
        super().__init__(f"stopped by {signal_name(signum)} after epoch {epoch}")
        self.signum, self.epoch = signum, epoch

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.signum, self.epoch))


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def request(signum: int = signal.SIGTERM) -> None:
    global _requested
    if _requested is None:
        _requested = signum


def requested() -> Optional[int]:
    """The signal that asked to stop, or None."""
    return _requested


def clear() -> None:
    global _requested
    _requested = None
