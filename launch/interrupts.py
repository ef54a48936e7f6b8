"""Ctrl-C and SIGTERM on `reprogbench run` / `cell`: stop cleanly, so the same command continues.

The first SIGINT or SIGTERM asks every running cell to stop (`bench.stop`): each finishes the epoch in progress,
which writes its checkpoint, and stops; no new cell starts. Worker processes of `--workers N` do the same: they
set the same flag on SIGINT / SIGTERM (a terminal's Ctrl-C reaches the whole process group) and the parent
forwards a SIGTERM to them (a `kill PID` reaches the parent only). Interrupted cells are recorded neither done
nor failed, so a rerun resumes them. A second signal to the parent stops at once (KeyboardInterrupt), losing at
most each running cell's current epoch, like `kill -9`.

Under torchrun, torchrun forwards its SIGINT / SIGTERM to every rank; the ranks agree at the next epoch boundary
(`bench.train.distributed.Distributed.stop_agreed`) and stop together (torchrun then reports the signal with its own
traceback).

Under Slurm, submitit handles the signals itself (USR2 before a time limit or on preemption requeues the job:
`launch.slurm.PackJob.checkpoint`); this module is not used there.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable

from bench import stop

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_status(signum: int) -> int:
    """The shell's convention: 128 + the signal (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


class StopOnSignals:
    """While active (in the main thread), SIGINT / SIGTERM request a clean stop; `workers()` gives the pids to
    forward it to."""

    def __init__(self, workers: Callable[[], Iterable[int]] = tuple):
        self.workers = workers
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignals:
        stop.clear()
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum: int, frame) -> None:
        # under torchrun a rank gets the terminal's Ctrl-C and torchrun's forwarded signal: twice is not "again"
        ranked = "WORLD_SIZE" in os.environ
        if stop.requested() is not None:
            if ranked:
                return
            raise KeyboardInterrupt  # asked twice: stop now
        stop.request(signum)
        if os.environ.get("RANK", "0") == "0":
            print(f"reprogbench: {stop.signal_name(signum)}: running cells stop after their current epoch, which "
                  "saves their checkpoint" + ("" if ranked else " (send it again to stop at once, losing that epoch)"),
                  file=sys.stderr, flush=True)
        self.forward()

    def forward(self) -> None:
        for pid in self.workers():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _request_in_worker(signum: int, frame) -> None:
    stop.request(signum)


def install_in_worker() -> None:
    """In a worker process: SIGINT and SIGTERM only ask to stop (no KeyboardInterrupt traceback mid-step)."""
    for signum in SIGNALS:
        signal.signal(signum, _request_in_worker)
