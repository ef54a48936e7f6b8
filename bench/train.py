"""The Accelerate trainer: one cell -> its result record.

One process, or DDP under `torchrun` (gloo on CPU, NCCL on GPU); bf16 autocast on GPU. Data lives as uint8
tensors on the training device and is batched by index with a permutation seeded by (seed, epoch), so an
interrupted cell resumes on exactly the batches it would have seen. The global batch is split across ranks
and the loss is scaled so DDP's gradient average equals the single-process gradient.

Model selection uses validation accuracy only; the test split is read once, with the chosen weights.
"""
from __future__ import annotations

import platform
import resource
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

from bench.config import Cell
from bench.data import ImageSet, dataset_info, load_task
from bench.methods import METHODS, MethodModel
from bench.models import Backbone, create_backbone
from bench.track import CHECKPOINT, MODEL, RESULT, Tracker, git_commit, save_torch, write_json

EVAL_BATCH = 512


class Diverged(RuntimeError):
    """The loss became NaN or infinite; the cell stops at once."""


class MissingOriginal(FileNotFoundError):
    """A cell's original model (made by its pretrain cell) is not on disk."""


@dataclass
class Clock:
    """Wall-clock split into setup / train / eval, carried across resumes so cost is counted once."""

    setup_s: float = 0.0
    train_s: float = 0.0
    eval_s: float = 0.0
    train_images: int = 0
    _t: float = field(default_factory=time.perf_counter, repr=False)

    def lap(self) -> float:
        now = time.perf_counter()
        elapsed, self._t = now - self._t, now
        return elapsed

    def state(self) -> dict:
        return {"setup_s": self.setup_s, "train_s": self.train_s, "eval_s": self.eval_s,
                "train_images": self.train_images}


# --------------------------------------------------------------------------- building a cell


def build_model(cell: Cell, num_classes: int, dependency_dirs: dict[str, Path]) -> MethodModel:
    spec = cell.spec
    method = METHODS.get(cell.method)
    params = method.Params(**{k: v for k, v in spec["method"].items() if k != "name"})
    name, input_size = spec["backbone"]["name"], spec["backbone"]["input_size"]
    if method.uses_original:
        backbone = load_original(cell, dependency_dirs)
    else:
        backbone = create_backbone(name, num_classes=num_classes, input_size=input_size)
    return method.build(backbone, dataset_info(cell.task), params, cell.seed)


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
    backbone.load_state_dict(torch.load(source, map_location="cpu", weights_only=True))
    return backbone


def make_optimizer(hp: dict, params) -> torch.optim.Optimizer:
    if hp["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=hp["lr"], weight_decay=hp["weight_decay"])
    return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])


def count_parameters(model: torch.nn.Module) -> dict:
    return {
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total": sum(p.numel() for p in model.parameters()),
    }


# --------------------------------------------------------------------------- the loop


def _as_float(images: torch.Tensor) -> torch.Tensor:
    return images.float().div_(255)


def _counts(loss_sum: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(loss sum, correct, count) as float64 on the batch's device, to be summed across batches and ranks."""
    correct = (logits.argmax(1) == y).sum()
    return torch.stack([loss_sum.double(), correct.double(), y.new_tensor(len(y), dtype=torch.float64)])


def evaluate(model, data: ImageSet, accelerator: Accelerator) -> tuple[float, float]:
    """-> (mean loss, accuracy in %) over the whole split, each rank taking every world_size-th sample."""
    model.eval()
    rank, world = accelerator.process_index, accelerator.num_processes
    index = torch.arange(rank, len(data.labels), world, device=data.labels.device)
    totals = torch.zeros(3, device=accelerator.device, dtype=torch.float64)  # loss sum, correct, count
    with torch.no_grad():
        for start in range(0, len(index), EVAL_BATCH):
            idx = index[start:start + EVAL_BATCH]
            y = data.labels[idx]
            with accelerator.autocast():
                logits = model(_as_float(data.images[idx])).float()
            totals += _counts(F.cross_entropy(logits, y, reduction="sum"), logits, y)
    loss_sum, correct, count = accelerator.reduce(totals, reduction="sum").tolist()
    return loss_sum / count, 100.0 * correct / count


def train_epoch(model, optimizer, data: ImageSet, hp: dict, seed: int, epoch: int, accelerator: Accelerator,
                cell: Cell) -> tuple[float, float, int]:
    model.train()
    regularizer = accelerator.unwrap_model(model).regularizer
    rank, world = accelerator.process_index, accelerator.num_processes
    n, batch = len(data.labels), hp["batch_size"]
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=generator).to(data.labels.device)
    totals = torch.zeros(3, device=accelerator.device, dtype=torch.float64)
    for step, start in enumerate(range(0, n, batch)):
        idx = perm[start:start + batch]
        if len(idx) < world:  # a rank with no samples would break BatchNorm; drop this sliver
            continue
        local = idx[rank::world]
        x, y = _as_float(data.images[local]), data.labels[local]
        with accelerator.autocast():
            logits = model(x).float()
        ce_sum = F.cross_entropy(logits, y, reduction="sum")
        # scaled so that DDP's mean over ranks gives the mean over the global batch
        loss = ce_sum * (world / len(idx)) + regularizer()
        check = accelerator.reduce(loss.detach(), reduction="mean") if world > 1 else loss.detach()
        if not torch.isfinite(check):
            raise Diverged(f"cell {cell.cell_id} diverged at epoch {epoch + 1}, step {step}: loss {check.item()}; "
                           "try a lower lr")
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        totals += _counts(ce_sum.detach(), logits, y)
    loss_sum, correct, count = accelerator.reduce(totals, reduction="sum").tolist()
    return loss_sum / count, 100.0 * correct / count, int(count)


def run_cell(
    cell: Cell,
    directory: Path,
    *,
    data_root: Optional[Path] = None,
    dependency_dirs: Optional[dict[str, Path]] = None,
    tracker: Optional[Tracker] = None,
    log: Callable[[str], None] = lambda line: None,
) -> dict:
    """Train one cell in `directory`, resuming from its checkpoint if one exists; -> its result record."""
    clock = Clock()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    directory = Path(directory)
    cuda = torch.cuda.is_available()
    accelerator = Accelerator(cpu=not cuda, mixed_precision="bf16" if cuda else "no")
    main = accelerator.is_main_process
    spec, hp = cell.spec, cell.spec["hparams"]
    set_seed(cell.seed)

    task = load_task(cell.task, data_root=data_root, split_seed=spec["split"]["seed"],
                     val_fraction=spec["split"]["val_fraction"], test_fraction=spec["split"]["test_fraction"],
                     max_train=spec["split"]["max_train"])
    train, val, test = (ImageSet(s.images.to(accelerator.device), s.labels.to(accelerator.device))
                        for s in (task.train, task.val, task.test))
    model = build_model(cell, task.info.num_classes, dependency_dirs or {})
    parameters = count_parameters(model)
    optimizer = make_optimizer(hp, [p for p in model.parameters() if p.requires_grad])
    model, optimizer = accelerator.prepare(model, optimizer)
    learned = accelerator.unwrap_model(model).learned

    history: list[dict] = []
    best = {"epoch": 0, "val_acc": -1.0, "learned": None}
    start_epoch, resumed_from = 0, None
    checkpoint_path = directory / CHECKPOINT
    if checkpoint_path.is_file():
        ckpt = torch.load(checkpoint_path, map_location=accelerator.device, weights_only=True)
        if ckpt["cell_id"] != cell.cell_id:
            raise RuntimeError(f"{checkpoint_path} belongs to cell {ckpt['cell_id']}, not {cell.cell_id}")
        learned.load_state_dict(ckpt["learned"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"].cpu())
        history, best, start_epoch = ckpt["history"], ckpt["best"], ckpt["epoch"]
        for key, value in ckpt["clock"].items():
            setattr(clock, key, value)
        resumed_from = start_epoch
        log(f"  resuming {cell.name} from epoch {start_epoch}")

    run_id = None
    tags = {"cell_id": cell.cell_id, "grid": cell.grid, "method": cell.method, "backbone": cell.backbone,
            "original_task": cell.trained_on or "none", "new_task": cell.task, "seed": str(cell.seed),
            "git_commit": git_commit()}
    if main and tracker is not None:
        run_id = tracker.start(cell, directory, tags)
    clock.setup_s += clock.lap()

    try:
        for epoch in range(start_epoch, hp["epochs"]):
            clock.lap()
            train_loss, train_acc, seen = train_epoch(model, optimizer, train, hp, cell.seed, epoch, accelerator, cell)
            clock.train_s += clock.lap()
            clock.train_images += seen
            val_loss, val_acc = evaluate(model, val, accelerator)
            clock.eval_s += clock.lap()
            row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
                   "val_loss": val_loss, "val_acc": val_acc, "elapsed_s": clock.train_s + clock.eval_s}
            history.append(row)
            if val_acc > best["val_acc"]:  # selection on validation only
                best = {"epoch": epoch + 1, "val_acc": val_acc,
                        "learned": {k: v.detach().clone() for k, v in learned.state_dict().items()}}
            if main:
                save_torch(checkpoint_path, {
                    "cell_id": cell.cell_id, "epoch": epoch + 1, "learned": learned.state_dict(),
                    "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(), "history": history,
                    "best": best, "clock": clock.state(),
                })
                if tracker is not None:
                    tracker.log_metrics(run_id, {k: v for k, v in row.items() if k != "epoch"}, step=epoch + 1)
            accelerator.wait_for_everyone()
            log(f"  {cell.name}  epoch {epoch + 1}/{hp['epochs']}  train loss {train_loss:.3f} "
                f"acc {train_acc:.1f}%  val acc {val_acc:.1f}%")
            clock.lap()

        learned.load_state_dict(best["learned"])
        clock.lap()
        test_loss, test_acc = evaluate(model, test, accelerator)  # the one and only read of the test split
        clock.eval_s += clock.lap()
    except BaseException:
        if main and tracker is not None:
            tracker.finish(run_id, "failed")
        raise

    if main and METHODS.get(cell.method).makes_original:
        save_torch(directory / MODEL, learned.state_dict())
    best_row = history[best["epoch"] - 1]
    record = {
        "cell_id": cell.cell_id, "grid": cell.grid, "name": cell.name, "status": "done",
        "spec": spec, "depends_on": list(cell.depends_on),
        "metrics": {"test_acc": test_acc, "test_loss": test_loss, "val_acc": best["val_acc"],
                    "train_acc": best_row["train_acc"], "best_epoch": best["epoch"]},
        "history": history,
        "timing": {**{k: round(v, 4) for k, v in clock.state().items() if k.endswith("_s")},
                   "total_s": round(clock.setup_s + clock.train_s + clock.eval_s, 4)},
        "throughput": {"train_images": clock.train_images,
                       "images_per_s": clock.train_images / clock.train_s if clock.train_s else None},
        "parameters": parameters,
        "memory": peak_memory(accelerator),
        "split": task.split,
        "environment": environment(accelerator),
        "resumed_from_epoch": resumed_from,
        "started_at": started_at,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mlflow_run_id": run_id,
    }
    if main:
        write_json(directory / RESULT, record)
        if tracker is not None:
            final = {"test_acc": test_acc, "test_loss": test_loss, "best_val_acc": best["val_acc"],
                     **record["timing"], "trainable_params": parameters["trainable"],
                     "images_per_s": record["throughput"]["images_per_s"] or 0.0}
            tracker.log_metrics(run_id, final, step=hp["epochs"])
            tracker.finish(run_id, "done")
    accelerator.wait_for_everyone()
    return record


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
