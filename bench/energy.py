"""The energy a cell's training used, read from the hardware's own counters where they exist.

One meter per process (per DDP rank), chosen by `open_meter`:
- `nvml`: on an NVIDIA GPU, the board's energy counter (`nvmlDeviceGetTotalEnergyConsumption`, mJ since the
  driver loaded; Volta and later). Counts the GPU only, not the host's CPUs.
- `rapl`: on a CPU with readable RAPL counters (`/sys/class/powercap/intel-rapl:N/energy_uj`, µJ), the energy of
  the CPU packages. A package counter wraps at `max_energy_range_uj`; a daemon thread reads it often enough to
  see every wrap. It counts the whole package, so other processes' work on the machine is included; ranks on
  one host read one counter, so only its local rank 0 counts it.
- `estimate`: neither is readable: a stated power figure times the time measured (CPU: W per core times the
  threads torch uses; GPU: the board's power limit, else a stated default). Marked as an estimate everywhere.

Counters are read, never sampled power: a meter's `joules()` is the counter's difference since the meter was
opened. The trainer reads it at the edges of the phases it times, so energy covers the same regions as the
wall-clock and a packed cell is charged its 1/K share, like its time (`bench.train.members.PackTimer`).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Protocol

RAPL_ROOT = Path("/sys/class/powercap")
WATTS_PER_CORE_ENV = "REPROGBENCH_CPU_WATTS_PER_CORE"
# A stated figure, not a measurement: a busy server core draws roughly 5-15 W of its package's power
# (e.g. a 205 W, 24-core Xeon: 8.5 W per core at full load). Override it with $REPROGBENCH_CPU_WATTS_PER_CORE.
DEFAULT_CPU_WATTS_PER_CORE = 10.0
# For a GPU without an energy counter whose power limit cannot be read either: a stated figure (an A100 PCIe's
# board power is 250-300 W).
DEFAULT_GPU_WATTS = 300.0
RAPL_POLL_S = 30.0  # a 262 kJ counter range wraps after 44 minutes at 100 W; polling twice a minute sees every wrap


class EnergyMeter(Protocol):
    source: str  # nvml | rapl | estimate
    basis: str  # what was read or assumed, in words, for the record and the report

    def joules(self) -> float:
        """Energy used since the meter was opened."""

    def describe(self) -> dict:
        """What goes into the record beside the joules: source, estimate, basis (and the watts assumed)."""

    def close(self) -> None: ...


@dataclass
class _Described:
    source: str
    basis: str
    watts: Optional[float] = None  # an estimate's power figure

    def describe(self) -> dict:
        out = {"source": self.source, "estimate": self.source == "estimate", "basis": self.basis}
        return out | ({"watts": self.watts} if self.watts is not None else {})

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- NVML


class NvmlMeter(_Described):
    """The GPU board's energy counter, in mJ since the driver loaded."""

    def __init__(self, handle, nvml, name: str):
        super().__init__("nvml", f"NVML total energy counter of {name} (GPU board only)")
        self._handle, self._nvml = handle, nvml
        self._start = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)

    def joules(self) -> float:
        return (self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) - self._start) / 1000.0

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()  # NVML counts inits: one shutdown per meter's init
        except Exception:  # noqa: BLE001 - closing a meter must never fail a cell
            pass


def _nvml_handle(device_index: int):
    """(pynvml module, handle) of this process's CUDA device; NVML counts devices in its own order, so the
    device is found by UUID (CUDA_VISIBLE_DEVICES renumbers torch's indices, not NVML's)."""
    import pynvml  # the nvidia-ml-py package; imported only where a GPU is used
    import torch

    pynvml.nvmlInit()
    uuid = str(getattr(torch.cuda.get_device_properties(device_index), "uuid", "") or "")
    if uuid:
        try:
            return pynvml, pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith(("GPU-", "MIG-")) else
                                                             f"GPU-{uuid}")
        except pynvml.NVMLError:
            pass
    return pynvml, pynvml.nvmlDeviceGetHandleByIndex(device_index)


def gpu_meter(device_index: int, clock=time.perf_counter) -> EnergyMeter:
    try:
        nvml, handle = _nvml_handle(device_index)
    except Exception as exc:  # noqa: BLE001 - no NVML (library, driver, permissions): an estimate, said so
        return EstimateMeter(DEFAULT_GPU_WATTS, f"{DEFAULT_GPU_WATTS:.0f} W, a stated GPU board power "
                             f"(NVML not usable: {type(exc).__name__})", clock)
    name = _text(nvml.nvmlDeviceGetName(handle))
    try:
        return NvmlMeter(handle, nvml, name)
    except nvml.NVMLError as exc:  # pre-Volta boards have no energy counter
        try:
            watts = nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0
            basis = f"{watts:.0f} W, the power limit of {name} (its energy counter: {exc})"
        except nvml.NVMLError:
            watts, basis = DEFAULT_GPU_WATTS, f"{DEFAULT_GPU_WATTS:.0f} W, a stated GPU board power ({name}: {exc})"
        return EstimateMeter(watts, basis, clock)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------- RAPL


@dataclass
class RaplZone:
    energy: Path  # .../energy_uj
    max_uj: int  # the counter wraps to 0 after this
    last: int = 0
    total_uj: int = 0

    def advance(self, now: int) -> None:
        self.total_uj += now - self.last if now >= self.last else now + self.max_uj - self.last
        self.last = now


def rapl_zones(root: Path = RAPL_ROOT) -> list[RaplZone]:
    """The CPU package zones whose counters this process can read (sub-zones such as core and dram are parts
    of a package or outside it; packages alone count each joule once)."""
    zones = []
    for zone in sorted(Path(root).glob("intel-rapl:*")):
        if zone.name.count(":") != 1:  # intel-rapl:0:1 is a sub-zone
            continue
        try:
            if not (zone / "name").read_text().strip().startswith("package"):
                continue
            max_uj = int((zone / "max_energy_range_uj").read_text())
            last = int((zone / "energy_uj").read_text())
        except (OSError, ValueError):  # often root-only since 2020 (CVE-2020-8694)
            continue
        zones.append(RaplZone(zone / "energy_uj", max_uj, last))
    return zones


@dataclass
class RaplMeter(_Described):
    zones: list[RaplZone] = field(default_factory=list)
    poll_s: float = RAPL_POLL_S

    def __post_init__(self):
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="rapl-poll", daemon=True)
        self._thread.start()

    def _read(self) -> int:
        with self._lock:
            for zone in self.zones:
                zone.advance(int(zone.energy.read_text()))
            return sum(z.total_uj for z in self.zones)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self._read()
            except OSError:
                return

    def joules(self) -> float:
        return self._read() / 1e6

    def close(self) -> None:
        self._stop.set()


class ZeroMeter(_Described):
    """A rank whose host's energy another rank of the same host counts (RAPL is per machine)."""

    def joules(self) -> float:
        return 0.0


# --------------------------------------------------------------------------- estimate


class EstimateMeter(_Described):
    """A stated power times the time elapsed; the trainer reads it only over measured phases."""

    def __init__(self, watts: float, basis: str, clock=time.perf_counter):
        super().__init__("estimate", basis, watts)
        self._clock = clock
        self._start = clock()

    def joules(self) -> float:
        return self.watts * (self._clock() - self._start)


def cpu_watts_per_core() -> float:
    return float(os.environ.get(WATTS_PER_CORE_ENV) or DEFAULT_CPU_WATTS_PER_CORE)


def cpu_meter(threads: int, local_rank: int = 0, root: Path = RAPL_ROOT, clock=time.perf_counter) -> EnergyMeter:
    zones = rapl_zones(root)
    if zones:
        basis = f"RAPL energy counters of {len(zones)} CPU package(s) (whole packages: all processes on the host)"
        if local_rank != 0:
            return ZeroMeter("rapl", basis + "; counted by local rank 0")
        return RaplMeter("rapl", basis, zones=zones)
    per_core = cpu_watts_per_core()
    return EstimateMeter(per_core * threads, f"{threads} thread(s) x {per_core:g} W per core, a stated figure "
                         f"(no readable RAPL counter; ${WATTS_PER_CORE_ENV} overrides it)", clock)


def open_meter(device_type: str, device_index: int = 0, threads: int = 1, local_rank: int = 0) -> EnergyMeter:
    """This process's meter: NVML on a CUDA device, RAPL on a CPU, else a stated estimate."""
    if device_type == "cuda":
        return gpu_meter(device_index)
    return cpu_meter(threads, local_rank)


def combine_sources(before: str, now: str) -> str:
    """A resumed cell's source: `rapl+estimate` if its attempts were metered differently."""
    parts = [p for p in before.split("+") if p]
    return "+".join(parts + ([now] if now not in parts else []))
