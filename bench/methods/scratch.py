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
    is_baseline = True
    label = "from scratch"
    marker = "^"
    # Adam on a whole network: around the thesis's 1e-3
    search_space = {"lr": {"loguniform": [1.0e-4, 1.0e-2]}, "weight_decay": {"loguniform": [1.0e-6, 1.0e-3]},
                    "batch_size": {"choice": [64, 128]}}

    def build(self, backbone: Backbone, task: DatasetInfo, params: MethodParams, seed: int) -> WholeNetwork:
        return WholeNetwork(backbone)


@register_method
class Pretrain(Scratch):
    """Trains an original model on its original task; other cells load its weights by cell_id."""

    name = "pretrain"
    makes_original = True
    is_baseline = False
    label = "original model"
    marker = "D"
    search_space = {}  # an original model is made once, with its grid's recipe; sweeps tune what reuses it


@register_method
class FineTune(Method):
    """The whole original network trains, under a new head for the new task: the usual upper baseline.

    Loads the original's weights like the reprogramming methods, but freezes nothing; its cells never pack, so
    each loads its own copy and no other cell sees the weights it changes.
    """

    name = "finetune"
    uses_original = True
    packs = False
    tunes_original = True
    label = "fine-tuning"
    marker = "P"
    # Adam at a tenth of the thesis's from-scratch lr: a pretrained network moved gently (e.g. ILM-VP's and
    # AutoVP's full fine-tuning baselines use small learning rates for the same reason)
    hparams = {"lr": 1.0e-4}
    search_space = {"lr": {"loguniform": [1.0e-5, 1.0e-2]}, "weight_decay": {"loguniform": [1.0e-6, 1.0e-3]},
                    "batch_size": {"choice": [64, 128]}}

    def build(self, backbone: Backbone, task: DatasetInfo, params: MethodParams, seed: int) -> WholeNetwork:
        backbone.replace_head(task.num_classes)  # drawn right after set_seed(the cell's seed), like any init
        return WholeNetwork(backbone)
