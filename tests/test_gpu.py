"""What only a GPU shows: a grid trained through the real CLI on CUDA runs under bf16 autocast, reads the board's
energy counter (NVML) and records the GPU's peak memory. Skipped where torch sees no GPU (CI, this project's
2-core VMs); run on a lent GPU machine, with the command and its output in BENCHMARKS.md."""
from __future__ import annotations

import pytest
import torch
from cli_helper import cli

from bench.files import cell_dir
from bench.grid import load_grid
from bench.record import read_record
from bench.train import run_cell

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU: bf16 autocast on CUDA, NVML")]

GRID = """
name: gpu_tiny
originals:
  - {backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 2}}
tasks: [digits_01]
methods:
  - {name: ar, hparams: {lr: 0.05}}
  - {name: blackbox, q: 5}
  - {name: linear_probe}
  - {name: scratch}
hparams: {batch_size: 64, epochs: 2}
seeds: [0]
"""

SCRATCH = """
name: gpu_scratch
originals: [{backbone: test_tinycnn, methods: [scratch]}]
tasks: [digits_01]
methods: [{name: scratch}]
hparams: {batch_size: 64, epochs: 2}
seeds: [0]
"""


def test_a_grid_on_a_gpu_trains_in_bf16_and_reads_the_boards_energy_counter(tmp_path):
    path = tmp_path / "gpu_tiny.yaml"
    path.write_text(GRID)
    results = tmp_path / "results"
    proc = cli("run", path, "--results", results, "--no-tracking")
    assert proc.returncode == 0, proc.stderr[-3000:]
    grid = load_grid(path)
    for cell in grid.cells:
        rec = read_record(cell_dir(results, grid.name, cell.cell_id))
        assert rec.status == "done", (cell.method, rec.error)
        env = rec.environment
        assert (env.device_type, env.mixed_precision, env.world_size) == ("cuda", "bf16", 1), cell.method
        assert env.device == torch.cuda.get_device_name()
        # the board's counter, not a stated wattage. It advances in steps: on an H200 a 0.06 s cell read 0.0 J
        assert (rec.energy.source, rec.energy.estimate) == ("nvml", False), rec.energy
        assert rec.energy.joules >= 0 and (rec.energy.joules > 0 or rec.timing.total_s < 1), (cell.method, rec.energy)
        assert rec.memory.gpu_peak_allocated_mb > 0
        assert 0.0 <= rec.metrics.test_acc <= 100.0
        if cell.method == "blackbox":  # queries counted: images sent through the frozen network
            assert rec.metrics.queries > 0
    # it trained: on the CPU scratch reaches 95.8% on digits 0/1 in 2 epochs (chance 50%)
    [scratch] = [c for c in grid.cells if c.method == "scratch"]
    assert read_record(cell_dir(results, grid.name, scratch.cell_id)).metrics.test_acc > 80


def test_a_cells_gpu_peak_is_its_own_not_the_highest_of_the_process(tmp_path):
    """Cells run one after another in one process (the local launcher): each record's GPU peak is that cell's.
    On an H200 every cell of a grid recorded the same 70.9 MiB, torch's peak since the process began."""
    path = tmp_path / "gpu_scratch.yaml"
    path.write_text(SCRATCH)
    [cell] = load_grid(path).cells
    earlier = torch.empty(512 * 2**20, dtype=torch.uint8, device="cuda")  # what an earlier cell held: 512 MiB
    del earlier
    rec = run_cell(cell, tmp_path / "scratch")
    assert rec.status == "done" and 0 < rec.memory.gpu_peak_allocated_mb < 512, rec.memory
