"""`linear_probe`: the thesis's "new and improved" method (chapter 4): resize, frozen body, new softmax layer."""
from __future__ import annotations

import torch
from torch import nn

from bench.data import DatasetInfo
from bench.methods.base import FrozenBackboneModel, Method, MethodParams, register_method
from bench.methods.inputs import fit
from bench.models import Backbone


class LinearProbe(FrozenBackboneModel):
    caches_features = True  # the trainer computes the backbone's features once, then trains the head on them

    def __init__(self, backbone: Backbone, num_classes: int):
        super().__init__(backbone)
        self.learned = nn.Linear(backbone.feature_dim, num_classes)

    def encode(self, x01: torch.Tensor) -> torch.Tensor:
        return fit(x01, self.backbone.info.channels, self.backbone.info.input_size)

    def frozen(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.features(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return self.learned(h)


@register_method
class LinearProbeMethod(Method):
    name = "linear_probe"
    label = "linear probe"
    marker = "s"
    Params = MethodParams
    # a softmax layer on frozen features: the usual logistic-regression ranges
    search_space = {"lr": {"loguniform": [1.0e-4, 0.1]}, "weight_decay": {"loguniform": [1.0e-6, 1.0e-2]},
                    "batch_size": {"choice": [64, 128, 256]}}

    def build(self, backbone: Backbone, task: DatasetInfo, params: MethodParams, seed: int) -> LinearProbe:
        return LinearProbe(backbone, task.num_classes)
