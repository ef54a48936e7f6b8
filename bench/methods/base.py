"""What a method is: declared parameters (validated), a `skip` hook, and `build` -> a trainable model.

Modelled on benchopt's solvers: a method file is a short declaration, not a training loop; the one trainer
(`bench.train`) runs every method.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict, model_serializer
from torch import nn

from bench.data import DatasetInfo
from bench.models import Backbone, BackboneInfo
from bench.registry import Registry


class MethodParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # parameters added after cells were run: left out of the spec while at their default, so those cells keep
    # their cell_id (and their finished results)
    omitted_at_default: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _omit_new_defaults(self, handler):
        data = handler(self)
        fields = type(self).model_fields
        return {k: v for k, v in data.items() if not (k in self.omitted_at_default and v == fields[k].default)}


class MethodModel(nn.Module):
    """new-task images in [0, 1] at their native size -> new-task logits.

    `learned` is the part that trains: it alone is checkpointed, so a checkpoint of a reprogrammed
    ImageNet model holds the program, not 25M frozen weights.
    """

    learned: nn.Module

    # True: the method owns its update (`zeroth_order_step`): the trainer never calls backward through it
    gradient_free: ClassVar[bool] = False

    def regularizer(self) -> torch.Tensor | float:
        return 0.0

    def start_epoch(self, epoch: int, source_counts: Callable[[], torch.Tensor]) -> None:
        """Called by the trainer before each epoch (epoch 0: before the first step; on resume, the epoch it
        resumes at). `source_counts()` runs the frozen source model on the train split with the current input
        function, under no_grad, and returns the (num_source, num_target) matrix of argmax counts; a fitted label
        mapping (FLM, ILM) calls it. Default: nothing."""

    def pop_queries(self) -> int:
        """Images sent through the backbone since the last call, for methods that count queries (black box)."""
        return 0


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


METHODS: Registry[Method] = Registry("method", package="bench.methods")


def register_method(cls: type[Method]) -> type[Method]:
    METHODS.register(cls.name, cls())
    return cls
