"""Measurements through the real trainer: feature caching, packed cells, DDP (launchers: `launch.speed`).

Each runs the same cells both ways in one process (or one parent process), on real data: a `smallcnn`
pretrained for one epoch on scikit-learn's digits is the original; the new tasks are Fashion-MNIST (Debian's
package; digits when it is absent) and counting squares. Weights do not change speed, so a briefly trained
original is enough; accuracies are reported only to show both paths computed the same thing. Each measurement's
grid (original and method) is a YAML file in `bench/speed/grids/`; tasks, epochs and seeds are set per run.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench.data import dataset_available
from bench.files import cell_dir
from bench.grid import Cell, Grid, load_grid
from bench.methods import METHODS
from bench.record import read_record
from bench.speed import Measurement, Settings

GRIDS = Path(__file__).resolve().parent / "grids"


def big_task() -> str:
    return "fashion_mnist" if dataset_available("fashion_mnist") else "digits"


def make_grid(settings: Settings, template: str, tasks: list[str], epochs: int, seeds: list[int],
              max_train=None, name: str = "") -> tuple[Grid, Path]:
    """Write the grid of `grids/<template>.yaml` for these tasks and seeds into the workdir, pretrain its original
    (untimed); -> (grid, results folder)."""
    from bench.train import run_cell

    workdir = Path(settings.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    raw = yaml.safe_load((GRIDS / f"{template}.yaml").read_text())
    raw.update(name=name or raw["name"], tasks=tasks, seeds=seeds,
               hparams={"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": epochs},
               split={"seed": 0, "val_fraction": 0.1, "test_fraction": 0.2, "max_train": max_train})
    path = workdir / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw))
    grid = load_grid(path)
    results = workdir / "results"
    for cell in grid.cells:
        if METHODS.get(cell.method).makes_original and read_record(cell_dir(results, grid.name, cell.cell_id)) is None:
            run_cell(cell, cell_dir(results, grid.name, cell.cell_id))
    return grid, results


def measured(grid: Grid) -> list[Cell]:
    """The cells a measurement times: all but the one that makes the original."""
    return [c for c in grid.cells if not METHODS.get(c.method).makes_original]


def _deps(cell: Cell, results: Path) -> dict[str, Path]:
    return {d: cell_dir(results, cell.grid, d) for d in cell.depends_on}


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def linear_probe_cache(settings: Settings) -> Measurement:
    """10 epochs of linear_probe: features computed once vs a full backbone pass per epoch."""
    from bench.train import TrainContext, TrainOptions, run_cell

    task = big_task()
    grid, results = make_grid(settings, "probe", [task], epochs=10, seeds=[0],
                              max_train=20_000 if settings.quick else None)
    [cell] = measured(grid)
    rows, records = [], {}
    for variant, cache in (("cached features", True), ("backbone every epoch", False)):
        directory = Path(settings.workdir) / "probe" / variant.replace(" ", "_")
        context = TrainContext(dependency_dirs=_deps(cell, results), options=TrainOptions(cache_features=cache))
        rec, wall = _timed(run_cell, cell, directory, context)
        records[variant] = rec
        t = rec.timing
        rows.append({"variant": variant, "wall s": wall, "features s": t.features_s, "train s": t.train_s,
                     "eval s": t.eval_s, "test acc %": rec.metrics.test_acc})
    cached, naive = rows
    gap = abs(cached["test acc %"] - naive["test acc %"])
    return Measurement(
        name="linear_probe, 10 epochs: cached features vs a backbone pass per epoch", rows=rows,
        ratio=naive["wall s"] / cached["wall s"], ratio_label="wall-clock naive / cached",
        target=">= 6x on this CPU",
        notes=[f"{task}, {records['cached features'].throughput.train_images // 10} train images, smallcnn "
               f"original, batch 128; test accuracy differs by {gap:.3f} points"])


def packed_cells(settings: Settings, k: int = 8) -> Measurement:
    """K `ar` programs (seeds) in one backbone pass vs the same K cells one by one."""
    from bench.train import TrainContext, run_cell, run_pack

    epochs = 2 if settings.quick else 5
    grid, results = make_grid(settings, "pack", ["squares"], epochs=epochs, seeds=list(range(k)),
                              max_train=2_000 if settings.quick else None)
    cells = measured(grid)
    deps = _deps(cells[0], results)
    base = Path(settings.workdir) / "pack"
    packed, packed_s = _timed(lambda: run_pack(cells, [base / "packed" / c.cell_id for c in cells],
                                               TrainContext(dependency_dirs=deps)))
    alone, alone_s = _timed(lambda: [run_cell(c, base / "alone" / c.cell_id, TrainContext(dependency_dirs=deps))
                                     for c in cells])
    gap = max(abs(p.metrics.test_acc - a.metrics.test_acc) for p, a in zip(packed, alone, strict=True))
    images = sum(r.throughput.train_images for r in packed)
    rows = [{"variant": f"{k} cells packed", "wall s": packed_s, "train images/s": images / packed_s},
            {"variant": f"{k} cells one by one", "wall s": alone_s, "train images/s": images / alone_s}]
    return Measurement(
        name=f"packed cells: {k} ar programs in one pass vs {k} cells one by one", rows=rows,
        ratio=alone_s / packed_s, ratio_label="wall-clock one by one / packed",
        target=">= 3x on a GPU for K=8; on a CPU packing saves only per-step overhead",
        notes=[f"squares ({packed[0].throughput.train_images // epochs} training images), smallcnn original, "
               f"{epochs} epochs, batch 128; largest test-accuracy gap between a "
               f"packed cell and the same cell alone: {gap:.3f} points"])


def _torchrun(nproc: int, grid_path: Path, cell_id: str, results: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // nproc))}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port",
           str(29500 + nproc), "-m", "bench.speed.one_cell", str(grid_path), cell_id, str(results)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun --nproc_per_node {nproc} failed: {proc.stderr.strip()[-800:]}")
    return time.perf_counter() - start


def ddp_scaling(settings: Settings) -> Measurement:
    """One `ar` cell under torchrun with 1 and 2 processes (gloo on CPU, NCCL on GPU)."""
    task = big_task()
    epochs = 1 if settings.quick else 3
    rows = []
    for nproc in (1, 2):
        # a grid per process count: the same cell, its own results folder, so each run starts from scratch
        grid, results = make_grid(settings, "ddp", [task], epochs=epochs, seeds=[0],
                                  max_train=10_000 if settings.quick else 30_000, name=f"speed_ddp{nproc}")
        [cell] = measured(grid)
        wall = _torchrun(nproc, grid.path, cell.cell_id, results)
        rec = read_record(cell_dir(results, grid.name, cell.cell_id))
        rows.append({"processes": nproc, "train images/s": rec.throughput.images_per_s, "wall s": wall,
                     "test acc %": rec.metrics.test_acc, "world size": rec.environment.world_size})
    one, two = rows
    speedup = two["train images/s"] / one["train images/s"]
    return Measurement(
        name="DDP: 1 vs 2 processes on one ar cell", rows=rows, ratio=speedup,
        ratio_label=f"images/s 2 / 1 process (scaling efficiency {100 * speedup / 2:.0f}%)",
        notes=[f"{task}, {epochs} epoch(s), global batch 128 split across ranks, OMP threads = cores / processes; "
               f"{os.cpu_count()} CPU cores"])
