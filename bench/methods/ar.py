"""`ar`: Elsayed et al.'s adversarial reprogramming (thesis 2.2.2, Table 3.1), with the input programs and label
mappings of later work: `program: pad` (visual prompting, Bahng et al. 2022), `program: full` (a program over
the whole image), and every mapping of `bench.methods.label_maps`."""
from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal, Optional

import torch
from pydantic import Field
from torch import nn

from bench.data import DatasetInfo
from bench.methods.base import FrozenBackboneModel, Method, MethodParams, register_method
from bench.methods.inputs import fit
from bench.methods.label_maps import LABEL_MAPS, needed_sources
from bench.methods.program import CanvasProgram
from bench.models import Backbone, BackboneInfo

# Bahng et al. (2022) pad a 224px image with a 30px prompt; on other canvases the same fraction
PAD_FRACTION = 30 / 224

LabelMapName = Literal["first_k", "random", "frequency", "iterative", "multi_label", "learned"]


class ARParams(MethodParams):
    # canvas: Elsayed et al.'s centred input on a program canvas with `mask`; pad: the input resized to
    # canvas - 2 * pad_width, a learned border around it; full: the program over the whole image (mask of ones)
    program: Literal["canvas", "pad", "full"] = "canvas"
    mask: Literal["centre", "ones"] = "centre"
    combine: Literal["add", "multiply", "subtract"] = "add"
    label_map: LabelMapName = "first_k"
    lam: float = Field(default=1.0e-4, ge=0)  # weight of λ‖W‖²
    # the new input's size on the canvas (its scale); None = its native size, shrunk to the canvas if larger
    # (program: full: the whole canvas)
    input_size: Optional[int] = Field(default=None, ge=1)
    pad_width: Optional[int] = Field(default=None, ge=1)  # program: pad; None: 30/224 of the canvas (Bahng et al.)
    labels_per_class: int = Field(default=1, ge=1)  # label_map: multi_label: m source classes per new class

    omitted_at_default: ClassVar[frozenset[str]] = frozenset({"program", "pad_width", "labels_per_class"})


class Reprogrammed(FrozenBackboneModel):
    def __init__(self, backbone: Backbone, program: CanvasProgram, label_map: torch.nn.Module, lam: float):
        super().__init__(backbone)
        # what trains, is checkpointed and selected on validation: the program, and the mapping if it learns or is
        # fitted (FLM/ILM: the mapping chosen with the best epoch's program). Registered first so parameters are
        # named learned.* (program and label_map below are the same objects)
        stateful_map = any(p.requires_grad for p in label_map.parameters()) or hasattr(label_map, "fit")
        self.learned = nn.ModuleDict({"program": program, "label_map": label_map}) if stateful_map else program
        self.program = program
        self.label_map = label_map
        self.lam = lam

    def encode(self, x01: torch.Tensor) -> torch.Tensor:
        return self.program(fit(x01, self.backbone.info.channels, self.program.input_size))

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        return self.label_map(logits)

    def regularizer(self) -> torch.Tensor:
        return self.lam * self.program.l2()

    def start_epoch(self, epoch: int, source_counts: Callable[[], torch.Tensor]) -> None:
        if hasattr(self.label_map, "refits") and self.label_map.refits(epoch):
            self.label_map.fit(source_counts())


def layout(params: ARParams, canvas: int, task: DatasetInfo) -> tuple[int, str]:
    """(the new input's size on the canvas, the program's mask) for each input program."""
    if params.program == "pad":
        width = params.pad_width or max(1, round(canvas * PAD_FRACTION))
        return canvas - 2 * width, "centre"
    if params.program == "full":
        return (params.input_size or canvas), "ones"
    return (params.input_size if params.input_size is not None else min(task.size, canvas)), params.mask


def ar_skip(params: ARParams, backbone: BackboneInfo, num_source: int, task: DatasetInfo) -> tuple[bool, str]:
    canvas = backbone.input_size
    if params.program == "pad" and params.input_size is not None:
        return True, "program: pad sets the input's size (canvas - 2 x pad_width): give pad_width, not input_size"
    if params.program != "canvas" and params.mask != "centre":
        return True, f"program: {params.program} sets its own mask; mask applies to program: canvas"
    if params.pad_width is not None and params.program != "pad":
        return True, "pad_width applies to program: pad"
    if params.labels_per_class > 1 and params.label_map != "multi_label":
        return True, "labels_per_class applies to label_map: multi_label"
    size, mask = layout(params, canvas, task)
    if params.combine == "multiply" and mask == "centre":
        return True, "combine=multiply with mask=centre multiplies the input by 0: use mask=ones"
    needed = needed_sources(params.label_map, task.num_classes, params.labels_per_class)
    if needed > num_source:
        per = f" ({params.labels_per_class} per class)" if params.label_map == "multi_label" else ""
        return True, f"{params.label_map} mapping needs {needed} source classes{per}, the original has {num_source}"
    if size < 1:
        return True, f"a pad of {params.pad_width} px each side leaves no room on the {canvas}px canvas"
    if size > canvas:
        return True, f"input_size {size} exceeds the {canvas}px canvas"
    if size == canvas and mask == "centre":
        return True, f"a {size}px input fills the {canvas}px canvas: the program has no pixels; " \
                     "set input_size below the canvas or mask: ones"
    return False, ""


def build_program(params: ARParams, info: BackboneInfo, task: DatasetInfo) -> CanvasProgram:
    size, mask = layout(params, info.input_size, task)
    return CanvasProgram(canvas=info.input_size, channels=info.channels, input_size=size, mask=mask,
                         combine=params.combine)


def build_label_map(params: ARParams, backbone: Backbone, task: DatasetInfo, seed: int) -> nn.Module:
    return LABEL_MAPS.get(params.label_map)(backbone.num_classes, task.num_classes, seed, params.labels_per_class)


@register_method
class AR(Method):
    name = "ar"
    label = "Elsayed AR"
    Params = ARParams
    # Elsayed et al. used Adam at lr 0.05; the thesis 1e-3 for every method: the range spans both. λ around the
    # default 1e-4, two decades either way.
    search_space = {"lr": {"loguniform": [1.0e-3, 0.3]}, "lam": {"loguniform": [1.0e-6, 1.0e-2]},
                    "batch_size": {"choice": [64, 128]}}

    def skip(self, params, backbone: BackboneInfo, num_source: int, task: DatasetInfo):
        return ar_skip(params, backbone, num_source, task)

    def build(self, backbone: Backbone, task: DatasetInfo, params: ARParams, seed: int) -> Reprogrammed:
        return Reprogrammed(backbone, build_program(params, backbone.info, task),
                            build_label_map(params, backbone, task, seed), params.lam)
