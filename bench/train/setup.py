"""Setting a pack up: the process group, the task's data on the device (or streamed to it), one model, optimizer
and resumed state per cell, the energy meter, and (before the first epoch) cached features or a compiled
backbone."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.data import dataset_info, load_task, part_infos
from bench.data.joint import TaskParts
from bench.data.types import TaskData
from bench.energy import EnergyMeter, combine_sources, open_meter
from bench.grid import Cell
from bench.methods import METHODS
from bench.pack import Pack, compute_features, pack_key
from bench.train.batch_norm import synchronise_batch_norm, trains_batch_norm
from bench.train.distributed import Distributed
from bench.train.epoch import compile_warmup
from bench.train.evaluation import Split
from bench.train.events import Compiled, Observers, Started
from bench.train.members import Member, PackTimer
from bench.train.models import build_models, count_parameters, make_optimizer
from bench.train.options import TrainContext
from bench.train.placement import choose_data_path, free_memory, images_bytes, to_device
from bench.train.resume import resume
from bench.train.stream import StreamedSplit


@dataclass
class PackRun:
    """A pack as it trains: its cells' members, the (prepared) pack model, the task and its splits, the cost."""

    dist: Distributed
    task: TaskData
    members: list[Member]
    pack: torch.nn.Module
    meter: EnergyMeter
    timer: PackTimer
    from_features: bool
    splits: dict[str, Split | StreamedSplit] | None = None
    data_path: str | None = None  # "device" or "stream", once the splits are loaded

    @property
    def start_epoch(self) -> int:
        return self.members[0].start_epoch

    @property
    def epochs(self) -> int:
        return self.members[0].hp["epochs"]

    @property
    def models(self) -> list:
        return [m.model for m in self.members]


def check_packable(cells: list[Cell]) -> None:
    if len({pack_key(c) for c in cells}) != 1 or (len(cells) > 1 and pack_key(cells[0]) is None):
        raise ValueError("cells packed together must share a pack key: " + ", ".join(c.cell_id for c in cells))


def set_up(cells: list[Cell], directories: list[Path], context: TrainContext) -> PackRun:
    """Everything before the first epoch but the data's fast paths; each member resumed from its checkpoint."""
    dist = Distributed()
    if dist.cuda:  # the record's GPU peak is this pack's, not the highest of every cell this process ran before
        torch.cuda.reset_peak_memory_stats(dist.device)
    split, hp = cells[0].spec["split"], cells[0].spec["hparams"]
    task = load_task(cells[0].task, data_root=context.data_root, split_seed=split["seed"],
                     val_fraction=split["val_fraction"], test_fraction=split["test_fraction"],
                     max_train=split["max_train"], image_size=needed_image_size(cells[0]))
    models = build_models(cells, task.info, context.dependency_dirs)  # class names as read from the task's files
    if dist.world > 1:  # BatchNorm that trains takes its statistics over the whole batch, as with one process
        models = [synchronise_batch_norm(m, dist.cuda) if trains_batch_norm(m) else m for m in models]
    members = [Member(c, Path(d), m, count_parameters(m)) for c, d, m in zip(cells, directories, models, strict=True)]
    meter = open_meter(dist.device.type, dist.device.index or 0, torch.get_num_threads(), dist.local_rank)
    timer = PackTimer(members, meter, dist.summed_over_ranks())
    from_features = context.options.cache_features and all(getattr(m, "caches_features", False) for m in models)
    pack = Pack(models, from_features=from_features, channels_last=dist.cuda,
                chunk=None if dist.cuda else max(hp["batch_size"], dist.eval_batch))
    if dist.cuda:
        pack.to(memory_format=torch.channels_last)
    for m in members:
        m.optimizer = make_optimizer(m.hp, [p for p in m.model.parameters() if p.requires_grad], fused=dist.cuda)
    prepared, *optimizers = dist.prepare(pack, *(m.optimizer for m in members))
    for m, opt in zip(members, optimizers, strict=True):
        m.optimizer = opt
        resume(m)
        m.clock.energy_source = combine_sources(m.clock.energy_source, meter.source)
    if len({m.start_epoch for m in members}) > 1:
        raise ValueError("packed cells must resume from the same epoch")
    if len(members) == 1 and members[0].rng is not None:
        torch.set_rng_state(members[0].rng.cpu())  # dropout in a whole network draws from it
    for m in members:
        for problem in m.checkpoint_problems if dist.main else ():
            print(f"reprogbench: {m.cell.cell_id}: {problem}", file=sys.stderr, flush=True)
    return PackRun(dist, task, members, prepared, meter, timer, from_features)


def needed_image_size(cell: Cell) -> int:
    """The side the cell's model resizes its input to (`bench.methods.inputs.fit`): an `ar` program's input size
    (its layout on the canvas), else the network's input size. Encoded datasets are decoded at it, so the device
    resizes nothing. Read from the spec: the models are built after the task is loaded (they need its class names).
    """
    size = cell.spec["backbone"]["input_size"]
    params = METHODS.get(cell.method).Params(**{k: v for k, v in cell.spec["method"].items() if k != "name"})
    if hasattr(params, "program"):
        from bench.methods.ar import layout

        return layout(params, size, dataset_info(cell.task)).input_size
    return size


def announce(run: PackRun, events: Observers) -> None:
    for m in run.members:
        events.on_start(Started(m.cell, m.directory, len(run.members), run.dist.device.type, run.dist.world,
                                m.resumed_from, m.threads_before))


def load_splits(run: PackRun, compile: bool, events: Observers, data_path: str = "auto") -> None:
    """The splits on the device or streamed to it (`data_path`, bench.train.placement; charged to set-up), as
    cached features when nothing upstream of the head learns; the task's parts given to each model; the backbone
    compiled if asked."""
    dist = run.dist
    sets = {"train": run.task.train, "val": run.task.val, "test": run.task.test}
    run.data_path = choose_data_path(data_path, images_bytes(run.task, dist.device), free_memory(dist.device))
    if run.data_path == "stream":
        images = {name: StreamedSplit(s, dist.device) for name, s in sets.items()}
    else:
        images = {name: Split(to_device(s, dist.device), s.labels.to(dist.device)) for name, s in sets.items()}
    run.timer.charge("setup_s")
    if run.from_features:
        run.splits = {name: Split(compute_features(dist.unwrap(run.pack), split, dist.eval_batch, dist.autocast,
                                                   dist.rank, dist.world, dist.gather), split.labels, True)
                      for name, split in images.items()}
        run.timer.charge("features_s")
    else:
        run.splits = images
    parts = TaskParts.of(run.task.info, part_infos(run.task.info.name)).to(dist.device)
    for model in run.models:
        model.use_task_parts(parts)
    if compile and not run.from_features and run.models[0].compile_for_training():
        compile_warmup(run.pack, run.members, run.splits["train"], dist)
        run.timer.charge("compile_s")
        events.on_compiled(Compiled(run.members[0].cell.backbone, run.members[0].clock.compile_s * len(run.members)))
