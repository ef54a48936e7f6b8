"""The Accelerate trainer: a cell, or a pack of cells sharing one frozen backbone -> their result records.

One process, or DDP under `torchrun` (gloo on CPU, NCCL on GPU). Data lives as uint8 tensors on the training
device and is batched by index with a permutation seeded by (seed, epoch), so an interrupted cell resumes on
exactly the batches it would have seen. The global batch is split across ranks and the loss is scaled so
DDP's gradient average equals the single-process gradient.

Fast paths (each measured against the naive path by `reprogbench bench`):
- a frozen backbone has no parameter that requires a gradient: backward computes only input gradients;
- head-only methods (`linear_probe`) train on features computed once instead of once per epoch;
- packed cells (`bench.pack`) share each backbone pass;
- on GPU: bf16 autocast, channels_last, TF32, fused Adam; `compile=True` adds torch.compile, timed apart.

Model selection uses validation accuracy only; the test split is read once, with the chosen weights.
"""
from __future__ import annotations

import platform
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed

from bench import checkpoint, stop
from bench.checkpoint import CorruptCheckpoint
from bench.data import dataset_info, load_task, part_infos
from bench.data.joint import class_blocks
from bench.energy import EnergyMeter, combine_sources, open_meter
from bench.files import CHECKPOINT, MODEL
from bench.grid import Cell
from bench.methods import METHODS, MethodModel
from bench.models import Backbone, create_backbone
from bench.pack import Pack, compute_features, pack_key
from bench.provenance import git_commit
from bench.record import PHASES, CellRecord, write_record
from bench.reference import thesis_params
from bench.track import Tracker


def eval_batch(device: torch.device) -> int:
    """Images per inference batch. On a CPU large batches overflow the caches: smallcnn measured 2,280 img/s
    at 128 and 1,710 at 512 on 2 Xeon cores; a GPU wants large batches."""
    return 512 if device.type == "cuda" else 128


class Diverged(RuntimeError):
    """The loss became NaN or infinite; the cell stops at once (packed cells: only that cell)."""

    def __init__(self, message: str, cell_id: str):
        super().__init__(message)
        self.cell_id = cell_id

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.args[0], self.cell_id))


class MissingOriginal(FileNotFoundError):
    """A cell's original model (made by its pretrain cell) is not on disk."""


@dataclass(frozen=True)
class TrainOptions:
    cache_features: bool = True  # head-only methods: backbone features computed once, not every epoch
    compile: bool = False  # torch.compile the backbone's body; compile time is reported apart
    # False for a sweep's trials: they are selected on validation, and only the chosen config, re-run as a cell,
    # may read the test split
    evaluate_test: bool = True


@dataclass
class Clock:
    """One cell's wall-clock by phase and the energy used over those phases (summed over ranks), carried
    across resumes so cost is counted once.

    A packed cell is charged its share (1/K) of each phase of the pack's wall-clock, and of its energy.
    """

    setup_s: float = 0.0
    features_s: float = 0.0
    compile_s: float = 0.0
    train_s: float = 0.0
    eval_s: float = 0.0
    train_images: int = 0
    queries: int = 0  # images sent through a black-box backbone (gradient-free methods); 0 for the others
    energy_j: float = 0.0
    energy_source: str = ""  # bench.energy: nvml | rapl | estimate ("a+b" if a resume changed it)

    def state(self) -> dict:
        return {**{k: getattr(self, k) for k in PHASES}, "train_images": self.train_images, "queries": self.queries,
                "energy_j": self.energy_j, "energy_source": self.energy_source}

    @property
    def total_s(self) -> float:
        return sum(getattr(self, k) for k in PHASES)


@dataclass
class Member:
    """One cell's own state inside a pack: its model, optimizer, record so far and run."""

    cell: Cell
    directory: Path
    model: MethodModel
    parameters: dict
    optimizer: Optional[torch.optim.Optimizer] = None
    clock: Clock = field(default_factory=Clock)
    history: list = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"epoch": 0, "val_acc": -1.0, "learned": None})
    start_epoch: int = 0
    resumed_from: Optional[int] = None
    run_id: Optional[str] = None
    rng: Optional[torch.Tensor] = None  # the global RNG state its checkpoint saved
    checkpoint_problems: list = field(default_factory=list)  # corrupt checkpoints skipped on resume (one line each)

    @property
    def learned(self) -> torch.nn.Module:
        return self.model.learned

    @property
    def hp(self) -> dict:
        return self.cell.spec["hparams"]


class PackTimer:
    """Laps of the pack's wall-clock and energy, each charged in equal shares to the members' clocks.

    `sum_ranks` adds a lap's energy over DDP ranks (every rank charges the same laps, so it is a collective
    call at the same point on each); the wall-clock is this rank's.
    """

    def __init__(self, members: list[Member], meter: Optional[EnergyMeter] = None,
                 sum_ranks: Optional[Callable[[float], float]] = None):
        self.members, self.meter, self.sum_ranks = members, meter, sum_ranks
        self._t, self._j = time.perf_counter(), self._joules()

    def _joules(self) -> float:
        return self.meter.joules() if self.meter is not None else 0.0

    def charge(self, phase: str) -> float:
        now, joules = time.perf_counter(), self._joules()
        elapsed, self._t = now - self._t, now
        used, self._j = joules - self._j, joules
        if self.sum_ranks is not None:
            used = self.sum_ranks(used)
        for m in self.members:
            setattr(m.clock, phase, getattr(m.clock, phase) + elapsed / len(self.members))
            m.clock.energy_j += used / len(self.members)
        return elapsed

    def skip(self) -> None:
        self._t, self._j = time.perf_counter(), self._joules()


# --------------------------------------------------------------------------- building cells


def load_original(cell: Cell, dependency_dirs: dict[str, Path]) -> Backbone:
    spec = cell.spec
    name, input_size = spec["backbone"]["name"], spec["backbone"]["input_size"]
    original = spec["original"]
    if original["pretrain_cell"] is None:
        return create_backbone(name, weights=original["weights"], input_size=input_size)
    source = dependency_dirs.get(original["pretrain_cell"], Path("?")) / MODEL
    if not source.is_file():
        raise MissingOriginal(
            f"original model {original['trained_on']}/{name} (pretrain cell {original['pretrain_cell']}) "
            f"not found at {source}; run the grid without --filter so its pretrain cell runs first"
        )
    backbone = create_backbone(name, num_classes=dataset_info(original["trained_on"]).num_classes,
                               input_size=input_size)
    try:
        checkpoint.verify(source)
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a checksum mismatch, a truncated zip: the same fix
        raise MissingOriginal(f"original model {source} is corrupt ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); delete the folder of its pretrain "
                              f"cell {original['pretrain_cell']} and rerun the grid to train it again") from None
    backbone.load_state_dict(state)
    return backbone


def build_models(cells: list[Cell], num_classes: int, dependency_dirs: dict[str, Path]) -> list[MethodModel]:
    """One model per cell; reprogramming cells share one original backbone object (loaded once).

    Each cell's own parameters are initialised right after `set_seed(its seed)`, the same whether the cell
    runs alone or packed, so packing does not change what a cell starts from.
    """
    spec = cells[0].spec
    method = METHODS.get(cells[0].method)
    if len(cells) > 1 and not (method.uses_original and method.packs):
        raise ValueError(f"{method.name} trains a whole network or owns its update; its cells cannot be packed")
    if method.uses_original:  # finetune too: its cells never pack, so this copy is its own
        shared = load_original(cells[0], dependency_dirs)
    models = []
    for cell in cells:
        params = method.Params(**{k: v for k, v in cell.spec["method"].items() if k != "name"})
        set_seed(cell.seed)
        backbone = shared if method.uses_original else create_backbone(
            spec["backbone"]["name"], num_classes=num_classes, input_size=spec["backbone"]["input_size"])
        models.append(method.build(backbone, dataset_info(cell.task), params, cell.seed))
    return models


def make_optimizer(hp: dict, params, fused: bool = False) -> torch.optim.Optimizer:
    # fused: one kernel for the whole update on CUDA instead of one per parameter tensor
    extra = {"fused": True} if fused else {}
    if hp["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=hp["lr"], weight_decay=hp["weight_decay"], **extra)
    return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"], **extra)


def count_parameters(model: torch.nn.Module) -> dict:
    return {
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total": sum(p.numel() for p in model.parameters()),
    }


def network_of(model: MethodModel) -> Backbone:
    """The backbone a model runs: the frozen original, or the whole network that trains."""
    return getattr(model, "backbone", None) or model.learned


# --------------------------------------------------------------------------- the loop


@dataclass
class Split:
    """A split as the loop sees it: uint8 images, or cached float features, and labels, on the device.

    `blocks` (joint tasks, bench.data.joint): the part each class belongs to; an image's logits are restricted
    to its own part's classes (the host knows which task an image is for), and accuracy is also kept per part.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    features: bool = False
    blocks: Optional[torch.Tensor] = None

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.inputs[idx]
        return x if self.features else x.float().div_(255)

    @property
    def parts(self) -> int:
        return 1 if self.blocks is None else int(self.blocks.max()) + 1

    def restrict(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.blocks is None:
            return logits
        own = self.blocks[y][:, None] == self.blocks[None, :]
        return logits.masked_fill(~own, float("-inf"))

    def part_of(self, y: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(y) if self.blocks is None else self.blocks[y]


def _counts(loss_sum: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(loss sum, correct, count) as float64, to be summed across batches and ranks."""
    correct = (logits.argmax(1) == y).sum()
    return torch.stack([loss_sum.double(), correct.double(), y.new_tensor(len(y), dtype=torch.float64)])


def _per_member(totals: torch.Tensor, accelerator: Accelerator) -> list[tuple[float, float, int]]:
    rows = accelerator.reduce(totals, reduction="sum").tolist()
    return [(loss / count, 100.0 * correct / count, int(count)) for loss, correct, count in rows]


@dataclass
class Evaluated:
    """One member's figures over a split: mean loss, accuracy in %, and accuracy per part of a joint task."""

    loss: float
    acc: float
    part_acc: list[float] = field(default_factory=list)

    def __iter__(self):  # (loss, acc), as callers unpack it
        return iter((self.loss, self.acc))


def evaluate(model, k: int, data: Split, accelerator: Accelerator) -> list[Evaluated]:
    """Per member over the whole split; each rank takes every world-th sample."""
    model.eval()
    rank, world = accelerator.process_index, accelerator.num_processes
    index = torch.arange(rank, len(data.labels), world, device=data.labels.device)
    totals = torch.zeros(k, data.parts, 3, device=accelerator.device, dtype=torch.float64)
    batch = max(1, eval_batch(accelerator.device) // k)  # one backbone pass sees k copies of the batch
    with torch.no_grad():
        for start in range(0, len(index), batch):
            idx = index[start:start + batch]
            x, y = data.batch(idx), data.labels[idx]
            part = data.part_of(y)
            with accelerator.autocast():
                outputs = model([x] * k)
            for j, logits in enumerate(outputs):
                logits = data.restrict(logits.float(), y)
                loss = F.cross_entropy(logits, y, reduction="none")
                for p in range(data.parts):
                    at = part == p
                    totals[j, p] += _counts(loss[at].sum(), logits[at], y[at])
    summed = accelerator.reduce(totals, reduction="sum")
    out = []
    for rows in summed.tolist():
        loss, correct, count = (sum(r[i] for r in rows) for i in range(3))
        parts = [100.0 * c / n if n else float("nan") for _, c, n in rows] if data.parts > 1 else []
        out.append(Evaluated(loss / count, 100.0 * correct / count, parts))
    return out


def source_counts(member: MethodModel, data: Split, num_source: int, num_target: int,
                  accelerator: Accelerator) -> torch.Tensor:
    """(num_source, num_target) counts of (the source model's argmax, the true class) over the train split, with
    the member's current input function, no gradient: what FLM / ILM fit a mapping to. Summed over ranks."""
    rank, world = accelerator.process_index, accelerator.num_processes
    index = torch.arange(rank, len(data.labels), world, device=data.labels.device)
    counts = torch.zeros(num_source * num_target, device=accelerator.device, dtype=torch.float64)
    was_training = member.training
    member.eval()
    with torch.no_grad():
        for start in range(0, len(index), eval_batch(accelerator.device)):
            idx = index[start:start + eval_batch(accelerator.device)]
            with accelerator.autocast():
                predicted = member.frozen(member.encode(data.batch(idx))).float().argmax(1)
            counts += torch.bincount(predicted * num_target + data.labels[idx],
                                     minlength=num_source * num_target).double()
    member.train(was_training)
    if world > 1:
        counts = accelerator.reduce(counts, reduction="sum")
    return counts.view(num_source, num_target)


def epoch_order(seed: int, epoch: int, n: int, device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


def train_epoch(model, members: list[Member], data: Split, epoch: int,
                accelerator: Accelerator) -> list[tuple[float, float, int]]:
    """One epoch for every member; each on its own batch order, all through one backbone pass per step."""
    model.train()
    rank, world = accelerator.process_index, accelerator.num_processes
    n, batch, k = len(data.labels), members[0].hp["batch_size"], len(members)
    orders = [epoch_order(m.cell.seed, epoch, n, data.labels.device) for m in members]
    totals = torch.zeros(k, 3, device=accelerator.device, dtype=torch.float64)
    gradient_free = members[0].model.gradient_free
    for step, start in enumerate(range(0, n, batch)):
        size = min(batch, n - start)
        if size < world:  # a rank with no samples would break BatchNorm; drop this sliver
            continue
        local = [order[start:start + batch][rank::world] for order in orders]
        ys = [data.labels[idx] for idx in local]
        if gradient_free:  # the method's own update: no autograd through the model, W.grad set by the method
            outputs = [_zeroth_order_step(m, data, idx, y, epoch, step, world / size, accelerator)
                       for m, idx, y in zip(members, local, ys, strict=True)]
        else:
            with accelerator.autocast():
                outputs = model([data.batch(idx) for idx in local])
        outputs = [data.restrict(logits.float(), y) for logits, y in zip(outputs, ys, strict=True)]
        ce_sums = [F.cross_entropy(logits, y, reduction="sum") for logits, y in zip(outputs, ys, strict=True)]
        # scaled so that DDP's mean over ranks gives the mean over the global batch
        losses = [ce * (world / size) + m.model.regularizer() for ce, m in zip(ce_sums, members, strict=True)]
        check = torch.stack([loss.detach() for loss in losses])
        check = accelerator.reduce(check, reduction="mean") if world > 1 else check
        finite = torch.isfinite(check)
        if not finite.all():
            bad = int((~finite).nonzero()[0])
            raise Diverged(f"cell {members[bad].cell.cell_id} diverged at epoch {epoch + 1}, step {step}: "
                           f"loss {check[bad].item()}; try a lower lr", members[bad].cell.cell_id)
        if gradient_free:
            # the logits came from the black box without a graph: this reaches only what follows it (a learned
            # mapping) and λ‖W‖², whose exact gradient adds to the method's estimate in W.grad
            total = sum(losses)
            if torch.is_tensor(total) and total.requires_grad:
                total.backward()
        else:
            accelerator.backward(sum(losses))  # each member's parameters get its own loss's gradient only
        for m in members:
            m.optimizer.step()
            m.optimizer.zero_grad(set_to_none=True)
        for j, (ce, logits, y) in enumerate(zip(ce_sums, outputs, ys, strict=True)):
            totals[j] += _counts(ce.detach(), logits, y)
    return _per_member(totals, accelerator)


def _zeroth_order_step(m: Member, data: Split, idx: torch.Tensor, y: torch.Tensor, epoch: int, step: int,
                       scale: float, accelerator: Accelerator) -> torch.Tensor:
    """A gradient-free member's step: its estimate of the gradient from losses alone, the same on every rank
    (directions drawn from (seed, epoch, step), losses averaged over the global batch)."""
    world = accelerator.num_processes

    def loss_of(logits: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(data.restrict(logits.float(), y), y, reduction="sum") * scale
        return accelerator.reduce(loss, reduction="mean") if world > 1 else loss

    generator = torch.Generator().manual_seed((m.cell.seed * 1_000_003 + epoch) * 100_003 + step)
    with accelerator.autocast():
        return m.model.zeroth_order_step(data.batch(idx), loss_of, generator)


def resume(member: Member, device) -> None:
    """Load the member's newest good checkpoint (`bench.checkpoint`); a corrupt one is reported and skipped."""
    def same_cell(state: dict) -> None:
        if state.get("cell_id") != member.cell.cell_id:
            raise CorruptCheckpoint(f"{CHECKPOINT} belongs to cell {state.get('cell_id')}, not {member.cell.cell_id}")

    # loaded on the CPU: load_state_dict copies onto the parameters' device. A DDP rank on CPU saves storages
    # tagged `cpu:0`, which torch cannot map to a device given as map_location (the resume restarted from scratch)
    loaded = checkpoint.load(member.directory, map_location="cpu", check=same_cell)
    member.checkpoint_problems = loaded.problems
    ckpt = loaded.state
    if ckpt is None:
        return
    member.learned.load_state_dict(ckpt["learned"])
    member.optimizer.load_state_dict(ckpt["optimizer"])
    member.history, member.best, member.start_epoch = ckpt["history"], ckpt["best"], ckpt["epoch"]
    member.clock = Clock(**ckpt["clock"])
    member.resumed_from = member.start_epoch
    member.rng = ckpt["rng"]


def checkpoint_epoch(directory: Path) -> int:
    """The epoch a cell would resume from (0: none; a corrupt checkpoint is skipped as `resume` skips it):
    cells pack only with cells at the same epoch."""
    return checkpoint.good_epoch(Path(directory))


def stop_agreed(accelerator: Accelerator) -> Optional[int]:
    """The signal asking to stop (`bench.stop`) if any rank got one, else None: every rank stops at the same
    epoch boundary."""
    signum = stop.requested()
    if accelerator.num_processes == 1:
        return signum
    asked = accelerator.reduce(torch.tensor([float(signum is not None)], device=accelerator.device), reduction="sum")
    return (signum or signal.SIGTERM) if asked.item() > 0 else None


def compile_warmup(model, members: list[Member], data: Split, accelerator: Accelerator) -> None:
    """One forward + backward on a first batch, no optimizer step: torch.compile compiles here, timed apart.

    The RNG state is restored so that compiling changes nothing the cell would have drawn.
    """
    rng = torch.get_rng_state()
    model.train()
    idx = torch.arange(min(members[0].hp["batch_size"], len(data.labels)), device=data.labels.device)
    with accelerator.autocast():
        outputs = model([data.batch(idx)] * len(members))
    accelerator.backward(sum(out.float().sum() for out in outputs))
    for m in members:
        m.optimizer.zero_grad(set_to_none=True)
    torch.set_rng_state(rng)


def run_cell(cell: Cell, directory: Path, **kwargs) -> dict:
    """Train one cell in `directory`, resuming from its checkpoint if one exists; -> its result record."""
    return run_pack([cell], [directory], **kwargs)[0]


def run_pack(
    cells: list[Cell],
    directories: list[Path],
    *,
    data_root: Optional[Path] = None,
    dependency_dirs: Optional[dict[str, Path]] = None,
    tracker: Optional[Tracker] = None,
    log: Callable[[str], None] = lambda line: None,
    options: TrainOptions = TrainOptions(),
    on_epoch: Optional[Callable[[Cell, dict], None]] = None,
    run_tags: Optional[dict[str, str]] = None,
) -> list[dict]:
    """Train cells that share a backbone pass (`bench.pack.pack_key`), each resuming from its checkpoint.

    `on_epoch(cell, row)` is called on the main process after each epoch with that epoch's history row and
    `best_val_acc` (a sweep reports it to Ray Tune); `run_tags` are added to each cell's MLflow run (e.g.
    `PARENT_RUN`: the launch or sweep it is nested under in the UI).
    """
    if len({pack_key(c) for c in cells}) != 1 or (len(cells) > 1 and pack_key(cells[0]) is None):
        raise ValueError("cells packed together must share a pack key: " + ", ".join(c.cell_id for c in cells))
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    cuda = torch.cuda.is_available()
    if cuda:  # TF32 matmuls/convolutions for whatever still runs in float32
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    accelerator = Accelerator(cpu=not cuda, mixed_precision="bf16" if cuda else "no")
    main = accelerator.is_main_process
    spec, hp = cells[0].spec, cells[0].spec["hparams"]

    task = load_task(cells[0].task, data_root=data_root, split_seed=spec["split"]["seed"],
                     val_fraction=spec["split"]["val_fraction"], test_fraction=spec["split"]["test_fraction"],
                     max_train=spec["split"]["max_train"])
    models = build_models(cells, task.info.num_classes, dependency_dirs or {})
    members = [Member(c, Path(d), m, count_parameters(m)) for c, d, m in zip(cells, directories, models, strict=True)]
    meter = open_meter(accelerator.device.type, accelerator.device.index or 0, torch.get_num_threads(),
                       accelerator.local_process_index)
    timer = PackTimer(members, meter, summed_over_ranks(accelerator))
    from_features = options.cache_features and all(getattr(m, "caches_features", False) for m in models)
    pack = Pack(models, from_features=from_features, channels_last=cuda,
                chunk=None if cuda else max(hp["batch_size"], eval_batch(accelerator.device)))
    if cuda:
        pack.to(memory_format=torch.channels_last)
    for m in members:
        m.optimizer = make_optimizer(m.hp, [p for p in m.model.parameters() if p.requires_grad], fused=cuda)
    model, *optimizers = accelerator.prepare(pack, *(m.optimizer for m in members))
    for m, opt in zip(members, optimizers, strict=True):
        m.optimizer = opt
        resume(m, accelerator.device)
        m.clock.energy_source = combine_sources(m.clock.energy_source, meter.source)
    if len({m.start_epoch for m in members}) > 1:
        raise ValueError("packed cells must resume from the same epoch")
    if len(members) == 1 and members[0].rng is not None:
        torch.set_rng_state(members[0].rng.cpu())  # dropout in a whole network draws from it
    for m in members:
        for problem in m.checkpoint_problems if main else ():
            print(f"reprogbench: {m.cell.cell_id}: {problem}", file=sys.stderr, flush=True)
        if m.resumed_from:
            log(f"  resuming {m.cell.name} from epoch {m.start_epoch}")

    tags = {"grid": cells[0].grid, "method": cells[0].method, "backbone": cells[0].backbone,
            "new_task": cells[0].task, "git_commit": git_commit(), "pack_size": str(len(cells)),
            "device_type": accelerator.device.type, "world_size": str(accelerator.num_processes),
            "torch_threads": str(torch.get_num_threads()),
            **(run_tags or {})}
    if main and tracker is not None:
        for m in members:
            m.run_id = tracker.start(m.cell, m.directory, {
                **tags, "cell_id": m.cell.cell_id, "original_task": m.cell.trained_on or "none",
                "seed": str(m.cell.seed)})
            tracker.log_params(m.run_id, thesis_params(m.cell))  # the published figure, beside the spec
    images = {name: (s.images.to(accelerator.device), s.labels.to(accelerator.device))
              for name, s in (("train", task.train), ("val", task.val), ("test", task.test))}
    timer.charge("setup_s")

    try:
        if from_features:
            splits = {name: Split(compute_features(accelerator.unwrap_model(model), x, eval_batch(accelerator.device),
                                                   accelerator.autocast, accelerator.process_index,
                                                   accelerator.num_processes, accelerator.gather), y, True)
                      for name, (x, y) in images.items()}
            timer.charge("features_s")
        else:
            splits = {name: Split(x, y) for name, (x, y) in images.items()}
        blocks = class_blocks(task.info, part_infos(task.info.name))
        if blocks is not None:
            for split in splits.values():
                split.blocks = blocks.to(accelerator.device)
        # a gradient-free method never runs backward through the backbone: nothing to warm up
        if options.compile and not from_features and not members[0].model.gradient_free:
            network_of(members[0].model).body.compile()
            compile_warmup(model, members, splits["train"], accelerator)
            timer.charge("compile_s")
            log(f"  compiled {cells[0].backbone} in {members[0].clock.compile_s * len(members):.1f}s")

        for epoch in range(members[0].start_epoch, hp["epochs"]):
            signum = stop_agreed(accelerator)  # every member's checkpoint of the last epoch is on disk
            if signum:
                raise stop.Interrupted(signum, epoch)
            timer.skip()
            for m in members:  # e.g. FLM / ILM fit their label mapping here (charged to training)
                m.model.start_epoch(epoch, lambda m=m: source_counts(
                    m.model, splits["train"], network_of(m.model).num_classes, task.info.num_classes, accelerator))
            trained = train_epoch(model, members, splits["train"], epoch, accelerator)
            timer.charge("train_s")
            validated = evaluate(model, len(members), splits["val"], accelerator)
            timer.charge("eval_s")
            for m, (train_loss, train_acc, seen), val in zip(members, trained, validated, strict=True):
                m.clock.queries += m.model.pop_queries()
                end_of_epoch(m, epoch, train_loss, train_acc, seen, val.loss, val.acc, main, tracker, log,
                             parts=dict(zip(task.info.parts, val.part_acc, strict=False)))
                if on_epoch is not None and main:
                    on_epoch(m.cell, {**m.history[-1], "best_val_acc": m.best["val_acc"]})
            accelerator.wait_for_everyone()
            timer.skip()

        for m in members:
            m.learned.load_state_dict(m.best["learned"])
        timer.skip()
        if options.evaluate_test:
            tested = evaluate(model, len(members), splits["test"], accelerator)  # the one and only read of test
            timer.charge("eval_s")
        else:
            tested = [Evaluated(None, None, [None] * len(task.info.parts))] * len(members)
        for m in members:
            m.clock.queries += m.model.pop_queries()
    except BaseException as exc:
        # SystemExit: stopped on purpose (Ray Tune's scheduler ends a weak trial this way); who stopped it closes
        # the run
        # Interrupted: KILLED, and the rerun that resumes the cell sets it RUNNING again
        if main and tracker is not None and not isinstance(exc, SystemExit):
            for m in members:
                stopped = isinstance(exc, (stop.Interrupted, KeyboardInterrupt))  # KeyboardInterrupt: asked twice
                tracker.finish(m.run_id, "interrupted" if stopped else "failed")
        raise
    finally:
        meter.close()

    records = []
    for m, test in zip(members, tested, strict=True):
        test_loss, test_acc = test.loss, test.acc
        record = CellRecord.model_validate(make_record(
            m, test_loss, test_acc, task.split, accelerator, started_at, [c.cell_id for c in cells], meter,
            parts=dict(zip(task.info.parts, test.part_acc, strict=False))))
        records.append(record)
        if not main:
            continue
        if METHODS.get(m.cell.method).makes_original:
            checkpoint.save_file(m.directory / MODEL, m.learned.state_dict())
        if tracker is not None:  # unsynced until its last MLflow call went through (`reprogbench sync`)
            record.tracking = tracker.sync_state(m.run_id).model_copy(update={"synced": False})
        write_record(m.directory, record)
        if tracker is not None:
            tracker.log_metrics(m.run_id, record.final_metrics(), step=m.hp["epochs"])
            tracker.finish(m.run_id, "done", tags={"energy_source": record.energy.source})
            tracker.mark_synced(m.directory, record, m.run_id)
    accelerator.wait_for_everyone()
    return records


def end_of_epoch(m: Member, epoch: int, train_loss, train_acc, seen, val_loss, val_acc, main: bool,
                 tracker: Optional[Tracker], log, parts: Optional[dict] = None) -> None:
    m.clock.train_images += seen
    row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
           "val_loss": val_loss, "val_acc": val_acc, "elapsed_s": m.clock.total_s, "energy_j": m.clock.energy_j,
           **{f"val_acc.{part}": acc for part, acc in (parts or {}).items()}}
    m.history.append(row)
    if val_acc > m.best["val_acc"]:  # selection on validation only
        m.best = {"epoch": epoch + 1, "val_acc": val_acc,
                  "learned": {k: v.detach().clone() for k, v in m.learned.state_dict().items()}}
    if main:
        checkpoint.save(m.directory, {
            "cell_id": m.cell.cell_id, "epoch": epoch + 1, "learned": m.learned.state_dict(),
            "optimizer": m.optimizer.state_dict(), "rng": torch.get_rng_state(), "history": m.history,
            "best": m.best, "clock": m.clock.state(),
        })
        if tracker is not None:
            tracker.log_metrics(m.run_id, {k: v for k, v in row.items() if k != "epoch"}, step=epoch + 1)
    log(f"  {m.cell.name}  epoch {epoch + 1}/{m.hp['epochs']}  train loss {train_loss:.3f} "
        f"acc {train_acc:.1f}%  val acc {val_acc:.1f}%")


def make_record(m: Member, test_loss: float, test_acc: float, split: dict, accelerator: Accelerator,
                started_at: str, pack: list[str], meter: EnergyMeter, parts: Optional[dict] = None) -> dict:
    cell, clock = m.cell, m.clock
    best_row = m.history[m.best["epoch"] - 1]
    metrics = {"test_acc": test_acc, "test_loss": test_loss, "val_acc": m.best["val_acc"],
               "train_acc": best_row["train_acc"], "best_epoch": m.best["epoch"]}
    if parts:  # a joint task: each part's accuracy (val at the selected epoch)
        metrics["per_task"] = {part: {"test_acc": acc, "val_acc": best_row.get(f"val_acc.{part}")}
                               for part, acc in parts.items()}
    if m.model.gradient_free:  # every image sent through the black box: training, mapping, validation, test
        metrics["queries"] = clock.queries
    return {
        "cell_id": cell.cell_id, "grid": cell.grid, "name": cell.name, "status": "done",
        "spec": cell.spec, "depends_on": list(cell.depends_on),
        "metrics": metrics,
        "history": m.history,
        # a packed cell's times are its 1/K share of the pack's wall-clock
        "timing": {**{k: round(getattr(clock, k), 4) for k in PHASES}, "total_s": round(clock.total_s, 4)},
        "pack": {"size": len(pack), "cells": pack},
        "throughput": {"train_images": clock.train_images,
                       "images_per_s": clock.train_images / clock.train_s if clock.train_s else None},
        # over the timed phases, summed over ranks; a packed cell's is its 1/K share, like its times
        "energy": {**meter.describe(), "joules": round(clock.energy_j, 4), "source": clock.energy_source,
                   "estimate": "estimate" in clock.energy_source, "ranks": accelerator.num_processes},
        "parameters": m.parameters,
        "memory": peak_memory(accelerator),
        "split": split,
        "environment": environment(accelerator),
        "resumed_from_epoch": m.resumed_from,
        "checkpoint_problems": m.checkpoint_problems,  # corrupt checkpoints skipped on resume
        "started_at": started_at,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mlflow_run_id": m.run_id,
    }


def summed_over_ranks(accelerator: Accelerator) -> Optional[Callable[[float], float]]:
    """A lap's energy summed over DDP ranks (each rank meters its own GPU); None for one process."""
    if accelerator.num_processes == 1:
        return None
    return lambda joules: accelerator.reduce(
        torch.tensor([joules], dtype=torch.float64, device=accelerator.device), reduction="sum").item()


def peak_memory(accelerator: Accelerator) -> dict:
    # ru_maxrss is the process's high-water mark (KiB on Linux): an upper bound when cells share a process
    memory = {"process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if accelerator.device.type == "cuda":
        memory["gpu_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return memory


def environment(accelerator: Accelerator) -> dict:
    import accelerate
    import torchvision

    device = torch.cuda.get_device_name() if accelerator.device.type == "cuda" else platform.processor() or "cpu"
    return {
        "device": device, "device_type": accelerator.device.type, "world_size": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision, "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0], "torch": torch.__version__, "torchvision": torchvision.__version__,
        "accelerate": accelerate.__version__, "hostname": socket.gethostname(), "git_commit": git_commit(),
    }
