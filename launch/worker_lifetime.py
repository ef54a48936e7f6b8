"""Pool workers that die with their launcher, whatever kills it.

A `kill -9` of the launching process gives it no chance to stop its workers: a worker would train on, record its
cell after the launch is gone, then sit in the pool's queue forever (issue 19.2). Two guards, set in the worker's
initializer (the pool starts workers with `spawn`, a fresh exec, so nothing set before the fork would survive):
- on Linux, `prctl(PR_SET_PDEATHSIG, SIGKILL)`: the kernel kills the worker the moment its parent exits;
- everywhere, a watchdog thread that ends the worker once its parent pid changes (it was re-parented to init or a
  subreaper), for systems without prctl and for a parent that died before the prctl call took effect.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
ORPHANED_EXIT = 70  # the worker's exit status when the watchdog ends it (EX_SOFTWARE): its launcher is gone
WATCH_INTERVAL_S = 1.0


def die_with_parent(parent_pid: int) -> None:
    """In a worker: end this process as soon as `parent_pid` (its launcher) is no longer its parent."""
    set_parent_death_signal()
    if os.getppid() != parent_pid:  # the launcher died before the death signal was armed
        os._exit(ORPHANED_EXIT)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="reprogbench-parent-watchdog",
                     daemon=True).start()


def set_parent_death_signal() -> bool:
    """Ask Linux to SIGKILL this process when its parent exits; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_INTERVAL_S)
    # os._exit, not sys.exit: the training thread must not get to record anything after its launcher is gone
    os._exit(ORPHANED_EXIT)
