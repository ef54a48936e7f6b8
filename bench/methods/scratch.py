"""`scratch` (the from-scratch baseline) and `pretrain` (making an original model): a whole network trains."""
from __future__ import annotations

import torch

from bench.data import DatasetInfo
from bench.methods.base import Method, MethodModel, MethodParams, register_method
from bench.methods.inputs import fit
from bench.models import Backbone


class WholeNetwork(MethodModel):
    def __init__(self, backbone: Backbone):
        super().__init__()
        self.learned = backbone

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        info = self.learned.info
        return self.learned(fit(x01, info.channels, info.input_size))


@register_method
class Scratch(Method):
    """The same architecture as the original, random init, the same hyperparameters."""

    name = "scratch"
    uses_original = False

    def build(self, backbone: Backbone, task: DatasetInfo, params: MethodParams, seed: int) -> WholeNetwork:
        return WholeNetwork(backbone)


@register_method
class Pretrain(Scratch):
    """Trains an original model on its original task; other cells load its weights by cell_id."""

    name = "pretrain"
    makes_original = True
