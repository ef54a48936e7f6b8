"""`linear_probe`: the thesis's "new and improved" method (chapter 4): resize, frozen body, new softmax layer."""
from __future__ import annotations

import torch
from torch import nn

from bench.data import DatasetInfo
from bench.methods.base import Method, MethodModel, MethodParams, register_method
from bench.methods.inputs import fit
from bench.models import Backbone


class LinearProbe(MethodModel):
    def __init__(self, backbone: Backbone, num_classes: int):
        super().__init__()
        self.backbone = backbone.freeze()
        self.learned = nn.Linear(backbone.feature_dim, num_classes)

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        info = self.backbone.info
        with torch.no_grad():  # nothing upstream of the head learns: skip the backbone's autograd entirely
            h = self.backbone.features(fit(x01, info.channels, info.input_size))
        return self.learned(h)


@register_method
class LinearProbeMethod(Method):
    name = "linear_probe"
    Params = MethodParams

    def build(self, backbone: Backbone, task: DatasetInfo, params: MethodParams, seed: int) -> LinearProbe:
        return LinearProbe(backbone, task.num_classes)
