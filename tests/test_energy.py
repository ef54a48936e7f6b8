"""The energy meter: RAPL counters (a sysfs tree written here: this VM has none), NVML's counter (a stand-in
module: no GPU here), the stated estimate this machine falls back to, and how the trainer shares a lap's energy."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from bench import energy
from bench.train.members import Clock, PackTimer


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def write_zone(root, name: str, kind: str, energy_uj: int, max_uj: int = 1_000_000):
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "name").write_text(kind + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return zone


def test_without_rapl_the_cpu_meter_is_a_stated_estimate(tmp_path, monkeypatch):
    monkeypatch.delenv(energy.WATTS_PER_CORE_ENV, raising=False)
    clock = FakeClock()
    meter = energy.cpu_meter(threads=2, root=tmp_path, clock=clock)  # an empty powercap folder
    clock.now += 3.0
    assert meter.joules() == pytest.approx(2 * energy.DEFAULT_CPU_WATTS_PER_CORE * 3.0)
    described = meter.describe()
    assert described["source"] == "estimate" and described["estimate"] is True
    assert described["watts"] == 2 * energy.DEFAULT_CPU_WATTS_PER_CORE
    assert "stated figure" in described["basis"] and energy.WATTS_PER_CORE_ENV in described["basis"]

    monkeypatch.setenv(energy.WATTS_PER_CORE_ENV, "4.5")
    assert energy.cpu_meter(threads=2, root=tmp_path, clock=clock).describe()["watts"] == 9.0


def test_rapl_sums_the_packages_once_and_survives_a_wrap(tmp_path):
    a = write_zone(tmp_path, "intel-rapl:0", "package-0", 900_000)
    write_zone(tmp_path, "intel-rapl:0:0", "core", 5)  # a part of package 0: not counted again
    write_zone(tmp_path, "intel-rapl:1", "psys", 7)  # the platform: would count the packages twice
    b = write_zone(tmp_path, "intel-rapl:2", "package-1", 100_000)
    meter = energy.cpu_meter(threads=2, root=tmp_path)
    try:
        assert meter.source == "rapl" and meter.describe()["estimate"] is False
        assert len(meter.zones) == 2 and "2 CPU package(s)" in meter.basis
        (a / "energy_uj").write_text("50000\n")  # wrapped: 900,000 -> 1,000,000 -> 0 -> 50,000 µJ
        (b / "energy_uj").write_text("350000\n")
        assert meter.joules() == pytest.approx((100_000 + 50_000 + 250_000) / 1e6)  # a: 150,000; b: 250,000
        (a / "energy_uj").write_text("150000\n")
        assert meter.joules() == pytest.approx((150_000 + 100_000 + 250_000) / 1e6)
    finally:
        meter.close()


def test_a_second_rank_on_the_host_does_not_count_rapl_twice(tmp_path):
    write_zone(tmp_path, "intel-rapl:0", "package-0", 10)
    meter = energy.cpu_meter(threads=1, local_rank=1, root=tmp_path)
    assert meter.source == "rapl" and meter.joules() == 0.0 and "local rank 0" in meter.basis


def test_unreadable_rapl_falls_back_to_the_estimate(tmp_path):
    zone = write_zone(tmp_path, "intel-rapl:0", "package-0", 10)
    (zone / "energy_uj").unlink()  # what a non-root user sees since 2020: no readable counter
    assert energy.cpu_meter(threads=1, root=tmp_path).source == "estimate"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU driver")
def test_without_nvml_a_gpu_meter_is_a_stated_estimate():
    meter = energy.gpu_meter(0)  # no NVIDIA library on this machine
    assert meter.source == "estimate" and meter.describe()["watts"] == energy.DEFAULT_GPU_WATTS
    assert "NVML not usable" in meter.basis


def test_nvml_energy_is_the_counter_difference_in_joules():
    """No GPU here: a stand-in for pynvml that returns the counter (mJ) NVML would."""
    readings = iter([5_000_000, 5_250_000, 6_000_000])
    nvml = SimpleNamespace(nvmlDeviceGetTotalEnergyConsumption=lambda handle: next(readings), nvmlShutdown=None)
    meter = energy.NvmlMeter("handle", nvml, "NVIDIA H100")
    assert meter.joules() == pytest.approx(250.0)
    assert meter.joules() == pytest.approx(1000.0)
    assert meter.describe() == {"source": "nvml", "estimate": False,
                                "basis": "NVML total energy counter of NVIDIA H100 (GPU board only)"}
    meter.close()  # a failing shutdown (here: not callable) does not raise


class SteppedMeter:
    source = "estimate"

    def __init__(self):
        self.value = 0.0

    def joules(self) -> float:
        return self.value


def test_a_pack_charges_each_cell_its_share_of_each_laps_energy_summed_over_ranks():
    members = [SimpleNamespace(clock=Clock()) for _ in range(4)]
    meter = SteppedMeter()
    timer = PackTimer(members, meter, sum_ranks=lambda joules: 2 * joules)  # two ranks, each used the same
    meter.value = 10.0
    timer.charge("train_s")
    meter.value = 16.0
    timer.skip()  # between measured phases (checkpoint writes): not charged, like the time
    meter.value = 20.0
    timer.charge("eval_s")
    for m in members:
        assert m.clock.energy_j == pytest.approx((2 * 10.0 + 2 * 4.0) / 4)
    assert sum(m.clock.energy_j for m in members) == pytest.approx(28.0)


def test_a_resumed_cell_names_every_source_its_attempts_used():
    assert energy.combine_sources("", "rapl") == "rapl"
    assert energy.combine_sources("rapl", "rapl") == "rapl"
    assert energy.combine_sources("rapl", "estimate") == "rapl+estimate"
    assert energy.combine_sources("rapl+estimate", "rapl") == "rapl+estimate"
