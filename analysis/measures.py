"""What one finished cell cost and reached, read from its record: compute, energy, CO2, time to an accuracy.

Compute is device-hours. On CUDA: the cell's wall-clock (its 1/K share if packed) times the GPUs it held (one
per rank), basis "device-held time". On a CPU: the process's CPU time (user + system, all ranks and reaped
workers) in core-hours, basis "CPU time", which a busy machine does not inflate; a record older than
`bench.cpu_usage` has none and is charged wall-clock x cores (torch threads per rank), basis "wall x cores".
A cell whose machine had more runnable work than its CPUs is flagged `overloaded` (`bench.cpu_usage`).
Energy is what the record measured (NVML, RAPL)
or estimated, and CO2 = energy x a carbon intensity in g CO2e per kWh.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from bench.cpu_usage import overloaded
from bench.record import CellRecord

J_PER_KWH = 3.6e6
# The world-average carbon intensity of electricity, 475 g CO2e/kWh (IEA, 2019; CodeCarbon's world default).
DEFAULT_CARBON_INTENSITY = 475.0
CARBON_INTENSITY_ENV = "REPROGBENCH_CARBON_INTENSITY"


@dataclass(frozen=True)
class Cost:
    wall_s: Optional[float]
    devices: Optional[int]  # GPUs, or CPU cores
    unit: str  # "GPU-h" or "CPU core-h"
    train_images: Optional[int]
    trainable: Optional[int]
    energy_j: Optional[float]
    energy_source: str  # nvml | rapl | estimate | "" (not recorded)
    cpu_s: Optional[float] = None  # the process's CPU time: the basis of a CPU cell's compute where recorded
    overloaded: bool = False  # measured on a machine with more runnable work than the cell's CPUs

    @property
    def basis(self) -> str:
        if self.unit == "GPU-h":
            return "device-held time"
        return "CPU time" if self.cpu_s is not None else "wall x cores"

    @property
    def compute_h(self) -> Optional[float]:
        if self.unit != "GPU-h" and self.cpu_s is not None:
            return self.cpu_s / 3600
        return self.wall_s * self.devices / 3600 if self.wall_s is not None and self.devices else None

    def co2_g(self, intensity: float) -> Optional[float]:
        return co2_g(self.energy_j, intensity)


def co2_g(energy_j: Optional[float], intensity: float) -> Optional[float]:
    return energy_j / J_PER_KWH * intensity if energy_j is not None else None


def devices_of(record: CellRecord) -> tuple[Optional[int], str]:
    env = record.environment
    ranks = (env.world_size if env else None) or 1
    if env and env.device_type == "cuda":
        return ranks, "GPU-h"
    threads = env.torch_threads if env else None
    return (ranks * threads if threads else None), "CPU core-h"


def cost_of(record: CellRecord) -> Cost:
    devices, unit = devices_of(record)
    timing, throughput, parameters, energy = record.timing, record.throughput, record.parameters, record.energy
    compute = record.compute
    return Cost(wall_s=timing.total_s if timing else None, devices=devices, unit=unit,
                train_images=throughput.train_images if throughput else None,
                trainable=parameters.trainable if parameters else None,
                energy_j=energy.joules if energy else None, energy_source=energy.source if energy else "",
                cpu_s=compute.cpu_s if compute else None, overloaded=is_overloaded(record))


def is_overloaded(record: CellRecord) -> bool:
    c = record.compute
    return bool(c) and overloaded(c.usable_cpus, c.load_start, c.load_end, c.cpu_pressure)


@dataclass(frozen=True)
class Reached:
    """The end of the first epoch whose val accuracy reached a threshold."""

    epoch: int
    wall_s: float
    compute_h: Optional[float]
    energy_j: Optional[float]


def time_to_accuracy(record: CellRecord, threshold: float) -> Optional[Reached]:
    """From the per-epoch history: when val accuracy first reached `threshold` (None: it never did).

    Its compute is on the cell's own basis: device-held time (or wall x cores) up to that epoch; on a CPU cell
    with CPU time, the cell's CPU time times the share of its wall-clock elapsed by then (the history keeps
    wall-clock per epoch, CPU time only for the whole run)."""
    cost = cost_of(record)
    for row in record.history:
        if row.val_acc is not None and row.val_acc >= threshold:
            return Reached(row.epoch, row.elapsed_s, _compute_until(cost, row.elapsed_s), row.energy_j)
    return None


def _compute_until(cost: Cost, elapsed_s: Optional[float]) -> Optional[float]:
    if elapsed_s is None:
        return None
    if cost.basis == "CPU time":
        return cost.compute_h * min(1.0, elapsed_s / cost.wall_s) if cost.wall_s else None
    return elapsed_s * cost.devices / 3600 if cost.devices else None
