"""The CPU a cell's process used and how busy the machine was while it ran, so compute survives a busy machine.

Wall-clock x cores charges a cell for the time other processes took its cores; CPU time (user + system, from
`resource.getrusage`) charges it only for what it ran. RUSAGE_CHILDREN adds data-loader workers once they are
reaped. Over DDP ranks the CPU time is summed. The machine's load is read twice: the 1-minute load average
(`os.getloadavg`, at start and end; it lags a short cell by up to a minute) and, where Linux exposes it, the
CPU pressure over the run (`/proc/pressure/cpu`, the share of the run some task waited for a CPU): that one
covers exactly the run, however short.
"""
from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

PSI_CPU = Path("/proc/pressure/cpu")
# A cell is flagged as measured on an overloaded machine when the load average at its start or end exceeds the
# CPUs it could use by this factor, or when some task waited for a CPU for more than this share of its run.
OVERLOAD_FACTOR = 1.25
OVERLOAD_PRESSURE = 0.3


def process_cpu_s() -> float:
    """User + system seconds of this process and its reaped children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0))


def cpu_stall_us() -> Optional[int]:
    """PSI's 'some' total: microseconds during which some task waited for a CPU (None without PSI)."""
    try:
        first = PSI_CPU.read_text().splitlines()[0]
        return int(first.rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True)
class CpuUsage:
    """Readings at a run's start; `finish` turns them into the record's `compute` part."""

    cpu_s: float
    wall: float
    load: float
    stall_us: Optional[int]

    @classmethod
    def start(cls) -> CpuUsage:
        return cls(process_cpu_s(), time.monotonic(), os.getloadavg()[0], cpu_stall_us())

    def finish(self, summed: Optional[Callable[[float], float]] = None, share: int = 1) -> dict:
        """The record's figures; `summed` adds a value over DDP ranks (every rank calls it), `share` is the
        pack's size K (a packed cell is charged 1/K of the CPU time, like its wall-clock)."""
        cpu_s = process_cpu_s() - self.cpu_s
        wall = time.monotonic() - self.wall
        if summed is not None:
            cpu_s = summed(cpu_s)
        stall = cpu_stall_us()
        pressure = None
        if stall is not None and self.stall_us is not None and wall > 0:
            pressure = (stall - self.stall_us) / 1e6 / wall
        return {"cpu_s": round(cpu_s / share, 4), "usable_cpus": usable_cpus(),
                "load_start": round(self.load, 2), "load_end": round(os.getloadavg()[0], 2),
                "cpu_pressure": round(min(pressure, 1.0), 3) if pressure is not None else None}


def overloaded(usable: Optional[int], load_start: Optional[float], load_end: Optional[float],
               pressure: Optional[float]) -> bool:
    """Whether the machine had more runnable work than the CPUs this cell could use (see the margins above)."""
    if pressure is not None and pressure > OVERLOAD_PRESSURE:
        return True
    loads = [x for x in (load_start, load_end) if x is not None]
    return bool(usable and loads and max(loads) > usable * OVERLOAD_FACTOR)
