"""What the loop reads the data as (`Split`) and the passes without gradient: evaluation over a split, and the
source model's prediction counts a fitted label mapping needs. Each rank takes every world-th sample; the
counts are summed over ranks."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Optional

import torch

from bench.methods import MethodModel
from bench.train.distributed import Distributed


@dataclass
class Split:
    """A split as the loop sees it: uint8 images, or cached float features, and labels, on the device.

    `bench.train.stream.StreamedSplit` has the same interface with the images off the device; the loops index
    both through it: indices on `index_device`, labels by `labels_of`, batches by `batch` or, step after step,
    `batches` (which a streamed split reads one step ahead)."""

    inputs: torch.Tensor
    labels: torch.Tensor
    features: bool = False

    @property
    def index_device(self) -> torch.device:
        return self.labels.device

    def labels_of(self, idx: torch.Tensor) -> torch.Tensor:
        return self.labels[idx]

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.inputs[idx]
        return x if self.features else x.float().div_(255)

    def batches(self, steps: Iterable[Sequence[torch.Tensor]]) -> Iterator[list[torch.Tensor]]:
        for idxs in steps:
            yield [self.batch(idx) for idx in idxs]

    def my_share(self, dist: Distributed) -> torch.Tensor:
        """The indices this rank reads."""
        return torch.arange(dist.rank, len(self.labels), dist.world, device=self.index_device)


def chunks(index: torch.Tensor, size: int) -> list[list[torch.Tensor]]:
    """`index` cut into steps of one batch of at most `size`."""
    return [[index[start:start + size]] for start in range(0, len(index), size)]


@dataclass
class Evaluated:
    """One member's figures over a split: mean loss, accuracy in %, and accuracy per part of a joint task."""

    loss: Optional[float]
    acc: Optional[float]
    part_acc: list = field(default_factory=list)


def evaluate(pack, models: list[MethodModel], data: Split, dist: Distributed) -> list[Evaluated]:
    """Per member over the whole split, each member's figures counted by its model (`MethodModel.evaluation_counts`:
    a joint task's per part)."""
    pack.eval()
    k, parts = len(models), models[0].task_parts.count
    index = data.my_share(dist)
    totals = torch.zeros(k, parts, 3, device=dist.device, dtype=torch.float64)
    batch = max(1, dist.eval_batch // k)  # one backbone pass sees k copies of the batch
    with torch.no_grad():
        steps = chunks(index, batch)
        for [idx], [x] in zip(steps, data.batches(steps), strict=True):
            y = data.labels_of(idx)
            with dist.autocast():
                outputs = pack([x] * k)
            for j, (model, logits) in enumerate(zip(models, outputs, strict=True)):
                totals[j] += model.evaluation_counts(logits.float(), y)
    return [_figures(rows, parts) for rows in dist.sum(totals).tolist()]


def _figures(rows: list[list[float]], parts: int) -> Evaluated:
    loss, correct, count = (sum(r[i] for r in rows) for i in range(3))
    part_acc = [100.0 * c / n if n else float("nan") for _, c, n in rows] if parts > 1 else []
    return Evaluated(loss / count, 100.0 * correct / count, part_acc)


def argmax_counts(source_outputs: torch.Tensor, labels: torch.Tensor, num_target: int) -> torch.Tensor:
    """(num_source, num_target) float64 counts of (the source model's argmax, the true class): what FLM / ILM /
    multi-label fit to."""
    num_source = source_outputs.shape[1]
    cell = source_outputs.float().argmax(1) * num_target + labels
    return torch.bincount(cell, minlength=num_source * num_target).double().view(num_source, num_target)


def source_counts(member: MethodModel, data: Split, num_source: int, num_target: int,
                  dist: Distributed) -> torch.Tensor:
    """The statistic a fitted label mapping fits to, summed over the train split and the ranks, with the member's
    current input function, no gradient: argmax counts (`argmax_counts`) unless the mapping has a
    `batch_statistic(source_outputs, labels, num_target)` of its own (BAR's top-30 probabilities)."""
    tally = getattr(getattr(member, "label_map", None), "batch_statistic", argmax_counts)
    index = data.my_share(dist)
    total = None
    was_training = member.training
    member.eval()
    with torch.no_grad():
        steps = chunks(index, dist.eval_batch)
        for [idx], [x] in zip(steps, data.batches(steps), strict=True):
            with dist.autocast():
                outputs = member.frozen(member.encode(x)).float()
            part = tally(outputs, data.labels_of(idx), num_target)
            total = part if total is None else total + part
    member.train(was_training)
    if total is None:  # this rank holds no train images: its zeros still join the sum
        total = tally(torch.zeros(0, num_source, device=dist.device),
                      torch.zeros(0, dtype=torch.long, device=dist.device), num_target)
    if dist.world > 1:
        total = dist.sum(total)
    return total
