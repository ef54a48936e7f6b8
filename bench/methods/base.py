"""What a method is: declared parameters (validated), a `skip` hook, and `build` -> a trainable model.

Modelled on benchopt's solvers: a method file is a short declaration, not a training loop; the one trainer
(`bench.train`) runs every method.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
import torch.nn.functional as F
from pydantic import ConfigDict, model_serializer
from torch import nn

from bench.data import DatasetInfo
from bench.data.joint import TaskParts
from bench.grid.errors import NumbersNotBools
from bench.models import Backbone, BackboneInfo
from bench.registry import Registry


class MethodParams(NumbersNotBools):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # parameters added after cells were run: left out of the spec while at their default, so those cells keep
    # their cell_id (and their finished results)
    omitted_at_default: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _omit_new_defaults(self, handler):
        data = handler(self)
        fields = type(self).model_fields
        return {k: v for k, v in data.items() if not (k in self.omitted_at_default and v == fields[k].default)}


def batch_counts(loss_sum: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(loss sum, correct, count) as float64, to be summed across batches and ranks."""
    correct = (logits.argmax(1) == y).sum()
    return torch.stack([loss_sum.double(), correct.double(), y.new_tensor(len(y), dtype=torch.float64)])


@dataclass
class Step:
    """One training step of a pack, as a method that owns its update sees it (`MethodModel.step_outputs`).

    `labels[j]` and `seeds[j]` are member j's; `scale` (world / global batch) makes a rank's summed loss, averaged
    over ranks by `mean_over_ranks`, the mean over the global batch.
    """

    epoch: int
    index: int
    labels: list[torch.Tensor]
    seeds: list[int]
    scale: float
    autocast: Callable
    mean_over_ranks: Callable[[torch.Tensor], torch.Tensor]

    def loss_of(self, j: int, restrict: Callable) -> Callable[[torch.Tensor], torch.Tensor]:
        """member j's batch loss as a function of its logits (restricted as `restrict` does), the same on every
        rank."""
        y = self.labels[j]

        def loss(logits: torch.Tensor) -> torch.Tensor:
            return self.mean_over_ranks(F.cross_entropy(restrict(logits.float(), y), y, reduction="sum") * self.scale)

        return loss

    def generator(self, j: int) -> torch.Generator:
        """Random draws for member j's step, from (seed, epoch, step): the same on every rank and on a resume."""
        return torch.Generator().manual_seed((self.seeds[j] * 1_000_003 + self.epoch) * 100_003 + self.index)


class MethodModel(nn.Module):
    """new-task images in [0, 1] at their native size -> new-task logits.

    `learned` is the part that trains: it alone is checkpointed, so a checkpoint of a reprogrammed
    ImageNet model holds the program, not 25M frozen weights.

    The trainer (`bench.train`) asks the model, never the method's name, for whatever differs between methods.
    These hooks have defaults that fit a model trained by backpropagation on a single task:

    - `regularizer()`: added to each step's loss (ar: λ‖W‖²).
    - `start_epoch(epoch, source_counts)`: before each epoch (a fitted label mapping fits itself here).
    - `step_outputs(pack, batches, step)` and `step_backward(loss, backward)`: a training step. By default one
      forward of the pack under autocast, and `backward(loss)` (the accelerator's) through its graph. A method
      that owns its update (black box: a zeroth-order estimate) overrides both.
    - `use_task_parts(parts)`, `restrict(logits, y)` and `evaluation_counts(logits, y)`: what the loss and the
      accuracy read, fed by the task (`bench.data.joint.TaskParts`): on a joint task only the classes of an
      image's own part compete and accuracy is counted per part.
    - `pop_queries()`: images sent through the backbone, for a method that counts them (black box).
    - `network()` and `compile_for_training()`: what the model runs, and torch.compile of it.
    """

    learned: nn.Module
    task_parts: TaskParts = TaskParts()  # a single task until the trainer gives it the task's parts

    def regularizer(self) -> torch.Tensor | float:
        return 0.0

    def start_epoch(self, epoch: int, source_counts: Callable[[], torch.Tensor]) -> None:
        """Called by the trainer before each epoch (epoch 0: before the first step; on resume, the epoch it
        resumes at). `source_counts()` runs the frozen source model on the train split with the current input
        function, under no_grad, and returns the statistic the mapping fits to (the (num_source, num_target) matrix of
        argmax counts, or the mapping's own `batch_statistic` summed: BAR's); a fitted label
        mapping (FLM, ILM) calls it. Default: nothing."""

    def step_outputs(self, pack: nn.Module, batches: list[torch.Tensor], step: Step) -> list[torch.Tensor]:
        """The logits of a training step for the pack this model leads (a pack's models are of one method):
        `pack(batches)` under autocast, with the graph `step_backward` differentiates."""
        with step.autocast():
            return pack(batches)

    def step_backward(self, loss: torch.Tensor, backward: Callable[[torch.Tensor], None]) -> None:
        """Gradients of the pack's summed loss for its optimizers to step on: `backward(loss)`, the accelerator's
        (each member's parameters get only its own loss's gradient)."""
        backward(loss)

    def use_task_parts(self, parts: TaskParts) -> None:
        """Called by the trainer once the task is loaded: the task's parts, on the training device."""
        self.task_parts = parts

    def restrict(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The logits (float32) as the loss and accuracy read them, given the true classes: the task's parts'
        restriction (a single task: unchanged)."""
        return self.task_parts.restrict(logits, y)

    def evaluation_counts(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(parts, 3): (loss sum, correct, count) of a batch per part of the task (`batch_counts`), summed by the
        trainer over batches and ranks into the loss, the accuracy and each part's accuracy."""
        logits = self.restrict(logits, y)
        loss = F.cross_entropy(logits, y, reduction="none")
        part = self.task_parts.part_of(y)
        rows = []
        for p in range(self.task_parts.count):
            at = part == p
            rows.append(batch_counts(loss[at].sum(), logits[at], y[at]))
        return torch.stack(rows)

    def pop_queries(self) -> Optional[int]:
        """Images sent through the backbone since the last call, for a method that counts its queries (black
        box: its record states the total); None for one that does not."""
        return None

    def network(self) -> nn.Module:
        """The backbone the model runs: the frozen original, or the whole network that trains."""
        return getattr(self, "backbone", None) or self.learned

    def compile_for_training(self) -> bool:
        """torch.compile the network's body before training (the trainer then warms it up with one forward and
        backward); False: nothing to compile (a black box is never differentiated)."""
        self.network().body.compile()
        return True


class FrozenBackboneModel(MethodModel):
    """input function -> frozen backbone -> output function: the shape of every reprogramming method.

    The trainer relies on this split: cells whose models share one frozen backbone are packed into a single
    backbone pass (`encode` per cell, one `frozen` call on the concatenated batch, `decode` per cell), and
    when `encode` learns nothing the frozen outputs are computed once and cached (`caches_features`).
    """

    # True when encode() has no parameters, so frozen(encode(x)) is fixed for the whole run
    caches_features: ClassVar[bool] = False

    def __init__(self, backbone: Backbone):
        super().__init__()
        self.backbone = backbone.freeze()

    def encode(self, x01: torch.Tensor) -> torch.Tensor:
        """new-task images in [0, 1] -> the frozen backbone's input."""
        raise NotImplementedError

    def frozen(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen part: the backbone's logits, or its features for head-only methods."""
        return self.backbone(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """frozen's output -> new-task logits."""
        raise NotImplementedError

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        if self.caches_features:  # nothing upstream of decode learns: skip the backbone's autograd entirely
            with torch.no_grad():
                h = self.frozen(self.encode(x01))
            return self.decode(h)
        return self.decode(self.frozen(self.encode(x01)))


class Method:
    name: ClassVar[str]
    Params: ClassVar[type[MethodParams]] = MethodParams
    # True: reprograms the trained original model, kept frozen. False: trains a fresh network.
    uses_original: ClassVar[bool] = True
    # True only for `pretrain`: the cell's weights become an original model other cells load
    makes_original: ClassVar[bool] = False
    # what `reprogbench sweep` samples when a grid gives no `search:` (format: bench.grid.search_space); {}: not swept
    search_space: ClassVar[dict] = {}
    # the method's own recipe (e.g. finetune's lr): replaces the grid-wide hparams, the method entry's replace it
    hparams: ClassVar[dict] = {}
    # False: its cells never share a backbone pass (a backbone that trains, or an update of the method's own)
    packs: ClassVar[bool] = True
    # True for the from-scratch baseline: what analysis compares every other method's accuracy and cost with
    is_baseline: ClassVar[bool] = False
    # True for fine-tuning: the whole original trains (the usual upper baseline, analysis's "vs finetune" column)
    tunes_original: ClassVar[bool] = False
    # how reports and plots name the method for a reader (default: its registry name)
    label: ClassVar[str] = ""
    marker: ClassVar[str] = "o"  # its marker in analysis plots

    def skip(
        self, params: MethodParams, backbone: BackboneInfo, num_source: int, task: DatasetInfo
    ) -> tuple[bool, str]:
        """(True, reason) for a combination that makes no sense; such cells are listed, never run."""
        return False, ""

    def build(self, backbone: Backbone, task: DatasetInfo, params: MethodParams, seed: int) -> MethodModel:
        raise NotImplementedError

    def frozen_output(self, method_spec: dict) -> str:
        """What the shared frozen pass computes for a cell with these method parameters (its spec's `method`):
        cells pack into one pass only where it is the same (ar: the source logits, or the image embedding a
        text-head mapping reads)."""
        return "logits"


METHODS: Registry[Method] = Registry("method", package="bench.methods")


def register_method(cls: type[Method]) -> type[Method]:
    METHODS.register(cls.name, cls())
    return cls
