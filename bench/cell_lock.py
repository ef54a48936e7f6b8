"""One training process per cell at a time, and what it tells others while it trains.

A cell being trained holds two files in its results folder:
- `train.lock`: a `filelock.SoftFileLease`, created atomically (O_CREAT | O_EXCL) with its holder's pid, host and
  process start time, its mtime refreshed by a heartbeat thread. A lock whose holder is a dead process of this host
  is taken over at once; one of another host whose heartbeat stopped is taken only after `LEASE_S` unchanged (so a
  shared filesystem works without fcntl locks, which NFS does not always honour);
- `live.json`: the marker `ls` and `status` read: host, pid, the launcher's pid (a pool worker's parent), the
  epochs finished out of the cell's total, and when it was last written.
The lease says who may train; the marker says how far it got. Both are removed when the cell stops (done, failed or
interrupted cleanly); a `kill -9` leaves them behind, which is how `ls` tells `interrupted` from `running`.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from bench.files import check_inside, read_json, write_json

LOCK = "train.lock"
LIVE = "live.json"
LEASE_S = 300.0  # a holder on another host whose heartbeat is older than this is presumed gone


@dataclass(frozen=True)
class Holder:
    """The process training a cell, as its marker says."""

    host: str
    pid: int
    launcher_pid: int  # the launch it belongs to: itself in-process, the pool's parent for a worker
    epoch: int  # epochs finished
    epochs: Optional[int]
    heartbeat: float  # time.time() of the last write

    @property
    def where(self) -> str:
        return f"{self.host}:{self.pid}"

    def here(self) -> bool:
        return self.host == socket.gethostname()

    def alive(self, directory: Path) -> bool:
        """Whether it still trains: on this host, its pid runs; elsewhere, its lease's heartbeat is recent."""
        if self.here():
            return pid_alive(self.pid)
        try:
            return time.time() - (Path(directory) / LOCK).stat().st_mtime < LEASE_S
        except FileNotFoundError:
            return False

    def orphaned(self) -> bool:
        """A worker of this host still training after its launcher died (a launch from before workers died with
        their launcher, or a system without PR_SET_PDEATHSIG)."""
        return self.here() and self.launcher_pid != self.pid and not pid_alive(self.launcher_pid)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    try:  # a zombie (killed, not yet reaped by its parent) trains nothing
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_holder(directory: Path) -> Optional[Holder]:
    data = read_json(Path(directory) / LIVE)
    try:
        return Holder(**data) if isinstance(data, dict) else None
    except TypeError:  # a marker of another shape: not ours to trust
        return None


def live_state(directory: Path) -> Optional[str]:
    """`running (epoch k/n)` while a process trains the cell, `interrupted` when its marker's process is gone,
    None when no marker is there."""
    holder = read_holder(directory)
    if holder is None:
        return None
    if not holder.alive(directory):
        return "interrupted"
    return f"running (epoch {holder.epoch}/{holder.epochs or '?'})"


class CellLock:
    """The lease and marker of one cell's training, taken by `acquire` and given back by `release`."""

    def __init__(self, directory: Path, epochs: Optional[int] = None, launcher_pid: Optional[int] = None):
        from filelock import SoftFileLease

        self.directory = Path(directory)
        self.epochs = epochs
        self.launcher_pid = launcher_pid or os.getpid()
        self.lease = SoftFileLease(self.directory / LOCK, lease_duration=LEASE_S)
        self.held = False

    def acquire(self) -> Optional[Holder]:
        """Take the cell; -> None when taken, else the holder in the way (its marker may not be written yet)."""
        from filelock import Timeout

        check_inside(self.directory / LOCK)  # a linked cell folder is refused before the lock is made
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self.lease.acquire(timeout=0)
        except Timeout:
            return read_holder(self.directory) or Holder("another host or process", self.lease.pid or 0, 0, 0,
                                                         self.epochs, 0.0)
        self.held = True
        self.mark(0)
        return None

    def mark(self, epoch: int, epochs: Optional[int] = None) -> None:
        """Record the epochs finished (and the heartbeat) in the marker."""
        self.epochs = epochs or self.epochs
        write_json(self.directory / LIVE, asdict(Holder(socket.gethostname(), os.getpid(), self.launcher_pid, epoch,
                                                        self.epochs, time.time())))

    def release(self) -> None:
        if not self.held:
            return
        (self.directory / LIVE).unlink(missing_ok=True)  # first: a marker without its lease reads `interrupted`
        self.lease.release()
        self.held = False


def describe_holder(cell_id: str, holder: Holder) -> str:
    """The line a launch prints for a cell it skips because another process trains it."""
    if holder.orphaned():
        return (f"cell {cell_id} is being trained by {holder.where}, a worker left by a launch that died "
                f"(pid {holder.launcher_pid}); skipped: `kill {holder.pid}` stops it")
    return f"cell {cell_id} is being trained by {holder.where}; skipped"


__all__ = ["LEASE_S", "LIVE", "LOCK", "CellLock", "Holder", "describe_holder", "live_state", "read_holder"]
