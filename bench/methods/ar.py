"""`ar`: Elsayed et al.'s adversarial reprogramming, as the thesis defines it (2.2.2, Table 3.1)."""
from __future__ import annotations

from typing import Literal, Optional

import torch
from pydantic import Field
from torch import nn

from bench.data import DatasetInfo
from bench.methods.base import FrozenBackboneModel, Method, MethodParams, register_method
from bench.methods.inputs import fit
from bench.methods.label_maps import LABEL_MAPS
from bench.methods.program import CanvasProgram
from bench.models import Backbone, BackboneInfo


class ARParams(MethodParams):
    mask: Literal["centre", "ones"] = "centre"
    combine: Literal["add", "multiply", "subtract"] = "add"
    label_map: Literal["first_k", "random", "learned"] = "first_k"
    lam: float = Field(default=1.0e-4, ge=0)  # weight of λ‖W‖²
    # the new input's size on the canvas; None = its native size, shrunk to the canvas if larger
    input_size: Optional[int] = Field(default=None, ge=1)


class Reprogrammed(FrozenBackboneModel):
    def __init__(self, backbone: Backbone, program: CanvasProgram, label_map: torch.nn.Module, lam: float):
        super().__init__(backbone)
        # what trains, is checkpointed and selected on validation: the program, and the mapping if it learns.
        # Registered first so parameters are named learned.* (program and label_map below are the same objects)
        trains_map = any(p.requires_grad for p in label_map.parameters())
        self.learned = nn.ModuleDict({"program": program, "label_map": label_map}) if trains_map else program
        self.program = program
        self.label_map = label_map
        self.lam = lam

    def encode(self, x01: torch.Tensor) -> torch.Tensor:
        return self.program(fit(x01, self.backbone.info.channels, self.program.input_size))

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        return self.label_map(logits)

    def regularizer(self) -> torch.Tensor:
        return self.lam * self.program.l2()


def _input_size(params: ARParams, canvas: int, task: DatasetInfo) -> int:
    return params.input_size if params.input_size is not None else min(task.size, canvas)


@register_method
class AR(Method):
    name = "ar"
    Params = ARParams
    # Elsayed et al. used Adam at lr 0.05; the thesis 1e-3 for every method: the range spans both. λ around the
    # default 1e-4, two decades either way.
    search_space = {"lr": {"loguniform": [1.0e-3, 0.3]}, "lam": {"loguniform": [1.0e-6, 1.0e-2]},
                    "batch_size": {"choice": [64, 128]}}

    def skip(self, params, backbone: BackboneInfo, num_source: int, task: DatasetInfo):
        if params.combine == "multiply" and params.mask == "centre":
            return True, "combine=multiply with mask=centre multiplies the input by 0: use mask=ones"
        if params.label_map != "learned" and task.num_classes > num_source:
            return True, (f"{params.label_map} mapping needs {task.num_classes} source classes, "
                          f"the original has {num_source}")
        size, canvas = _input_size(params, backbone.input_size, task), backbone.input_size
        if size > canvas:
            return True, f"input_size {size} exceeds the {canvas}px canvas"
        if size == canvas and params.mask == "centre":
            return True, f"a {size}px input fills the {canvas}px canvas: the program has no pixels; " \
                         "set input_size below the canvas or mask: ones"
        return False, ""

    def build(self, backbone: Backbone, task: DatasetInfo, params: ARParams, seed: int) -> Reprogrammed:
        info = backbone.info
        program = CanvasProgram(
            canvas=info.input_size, channels=info.channels, input_size=_input_size(params, info.input_size, task),
            mask=params.mask, combine=params.combine,
        )
        label_map = LABEL_MAPS.get(params.label_map)(backbone.num_classes, task.num_classes, seed)
        return Reprogrammed(backbone, program, label_map, params.lam)
