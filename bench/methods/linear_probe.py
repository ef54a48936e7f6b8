"""`linear_probe`: the thesis's "new and improved" method (chapter 4): resize, frozen body, new softmax layer."""
from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import nn

from bench.data import DatasetInfo
from bench.methods.base import FrozenBackboneModel, Method, MethodParams, register_method
from bench.methods.inputs import fit
from bench.models import Backbone


class LinearProbeParams(MethodParams):
    # penultimate: the head trains on the pooled features (the usual probe, and what the thesis's text describes);
    # logits: on the backbone's own class logits, as the thesis's code did for Keras MobileNet, whose layers[-2]
    # is the 1000-way pre-softmax reshape, not the pooled features (FinalCode/Imagenet_MobileNet_Caltech256.ipynb
    # in ekloberdanz/Thesis_Adversarial_Reprogramming: `Dense(num_classes)(net.layers[-2].output)`)
    features: Literal["penultimate", "logits"] = "penultimate"

    omitted_at_default: ClassVar[frozenset[str]] = frozenset({"features"})  # older cells keep their cell_id


class LinearProbe(FrozenBackboneModel):
    caches_features = True  # the trainer computes the backbone's features once, then trains the head on them

    def __init__(self, backbone: Backbone, num_classes: int, features: str = "penultimate"):
        super().__init__(backbone)
        self.on_logits = features == "logits"
        width = backbone.num_classes if self.on_logits else backbone.feature_dim
        self.learned = nn.Linear(width, num_classes)

    def encode(self, x01: torch.Tensor) -> torch.Tensor:
        return fit(x01, self.backbone.info.channels, self.backbone.info.input_size)

    def frozen(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x) if self.on_logits else self.backbone.features(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return self.learned(h)


@register_method
class LinearProbeMethod(Method):
    name = "linear_probe"
    label = "linear probe"
    marker = "s"
    Params = LinearProbeParams
    # a softmax layer on frozen features: the usual logistic-regression ranges
    search_space = {"lr": {"loguniform": [1.0e-4, 0.1]}, "weight_decay": {"loguniform": [1.0e-6, 1.0e-2]},
                    "batch_size": {"choice": [64, 128, 256]}}

    def build(self, backbone: Backbone, task: DatasetInfo, params: LinearProbeParams, seed: int) -> LinearProbe:
        return LinearProbe(backbone, task.num_classes, params.features)
