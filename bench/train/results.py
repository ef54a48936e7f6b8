"""A member's done record (`bench.record.CellRecord`) and the environment it was produced in."""
from __future__ import annotations

import platform
import resource
import socket
import sys
from datetime import datetime, timezone
from typing import Optional

import torch

from bench.provenance import git_commit
from bench.record import PHASES, CellRecord
from bench.train.batch_norm import trains_batch_norm
from bench.train.distributed import Distributed
from bench.train.evaluation import Evaluated
from bench.train.members import Member
from bench.train.setup import PackRun


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def done_record(run: PackRun, m: Member, test: Evaluated, train: Evaluated, started_at: str,
                compute: dict) -> CellRecord:
    """Member `m`'s record once its test split was read (`test`) and its selected weights evaluated on the train
    split (`train`); `compute`: the pack's CPU figures (`bench.cpu_usage.CpuUsage.finish`, this member's share)."""
    cell, clock, dist, parts = m.cell, m.clock, run.dist, run.task.info.parts
    pack = [x.cell.cell_id for x in run.members]
    best_row = m.history[m.best["epoch"] - 1]
    metrics = {"test_acc": test.acc, "test_loss": test.loss, "val_acc": m.best["val_acc"],
               "train_acc": train.acc, "train_acc_running": best_row["train_acc"], "best_epoch": m.best["epoch"]}
    if test.part_acc:  # a joint task: each part's accuracy (val at the selected epoch)
        metrics["per_task"] = {part: {"test_acc": acc, "val_acc": best_row.get(f"val_acc.{part}")}
                               for part, acc in zip(parts, test.part_acc, strict=False)}
    if m.counts_queries:  # every image through the black box: training, mapping, validation, train once, test
        metrics["queries"] = clock.queries
    return CellRecord(
        cell_id=cell.cell_id, grid=cell.grid, name=cell.name, status="done",
        spec=cell.spec, depends_on=list(cell.depends_on),
        metrics=metrics,
        history=m.history,
        # a packed cell's times are its 1/K share of the pack's wall-clock
        timing={**{k: round(getattr(clock, k), 4) for k in PHASES}, "total_s": round(clock.total_s, 4)},
        compute=compute,
        pack={"size": len(pack), "cells": pack},
        throughput={"train_images": clock.train_images,
                    "images_per_s": clock.train_images / clock.train_s if clock.train_s else None},
        # over the timed phases, summed over ranks; a packed cell's is its 1/K share, like its times
        energy={**run.meter.describe(), "joules": round(clock.energy_j, 4), "source": clock.energy_source,
                "estimate": "estimate" in clock.energy_source, "ranks": dist.world},
        parameters=m.parameters,
        memory=peak_memory(dist),
        split=run.task.split,
        # where the images were read from; how trainable BatchNorm layers computed their statistics
        environment={**environment(dist), "data_path": run.data_path, "batch_norm": batch_norm_mode(m.model, dist)},
        resumed_from_epoch=m.resumed_from,
        checkpoint_problems=m.checkpoint_problems,  # corrupt checkpoints skipped on resume
        started_at=started_at,
        finished_at=now(),
        mlflow_run_id=None,  # an MLflow observer names the run (`annotate`)
    )


def peak_memory(dist: Distributed) -> dict:
    # ru_maxrss is the process's high-water mark (KiB on Linux): an upper bound when cells share a process
    memory = {"process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if dist.device.type == "cuda":
        memory["gpu_peak_allocated_mb"] = torch.cuda.max_memory_allocated(dist.device) / 2**20  # since set_up
    return memory


def batch_norm_mode(model, dist: Distributed) -> Optional[str]:
    """'synced' (statistics over every rank), 'one process', or None when no BatchNorm layer trains."""
    if not trains_batch_norm(model):
        return None
    return "synced" if dist.world > 1 else "one process"


def environment(dist: Distributed) -> dict:
    import accelerate
    import torchvision

    device = torch.cuda.get_device_name() if dist.device.type == "cuda" else platform.processor() or "cpu"
    return {
        "device": device, "device_type": dist.device.type, "world_size": dist.world,
        "mixed_precision": dist.mixed_precision, "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0], "torch": torch.__version__, "torchvision": torchvision.__version__,
        "accelerate": accelerate.__version__, "hostname": socket.gethostname(), "git_commit": git_commit(),
    }
