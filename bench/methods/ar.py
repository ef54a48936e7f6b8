"""`ar`: Elsayed et al.'s adversarial reprogramming (thesis 2.2.2, Table 3.1), with every input program of
`bench.methods.input_programs` (`canvas`, and later work's `pad`, `border` and `full`) and every label mapping of
`bench.methods.label_maps`; `program` and `label_map` are validated against those registries."""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, ClassVar, Literal, Optional

import torch
from pydantic import AfterValidator, Field
from torch import nn

from bench.data import DatasetInfo
from bench.methods.base import FrozenBackboneModel, Method, MethodParams, register_method
from bench.methods.input_programs import INPUT_PROGRAMS, Layout, program_parameters, takers
from bench.methods.inputs import fit
from bench.methods.label_maps import (
    LABEL_MAPS,
    FittedLabelMap,
    TextLabelMap,
    needed_sources,
    reads_embedding,
    takes_labels_per_class,
)
from bench.methods.program import CanvasProgram
from bench.models import Backbone, BackboneInfo
from bench.registry import Registry


def registered(registry: Registry) -> AfterValidator:
    """A name that must be in `registry`; the error lists the registered names."""

    def check(name: str) -> str:
        if name not in registry:
            raise ValueError(f"unknown {registry.kind} {name!r}; known: {', '.join(registry.names())}")
        return name

    return AfterValidator(check)


LabelMapName = Annotated[str, registered(LABEL_MAPS)]
ProgramName = Annotated[str, registered(INPUT_PROGRAMS)]


class ARParams(MethodParams):
    # canvas: Elsayed et al.'s centred input on a program canvas with `mask`; pad: the input resized to
    # canvas - 2 * pad_width, a learned border around it (ILM-VP); border: the input at the whole canvas, a learned
    # pad_width border added over its edge (Bahng et al.); full: the program over the whole image (mask of ones)
    program: ProgramName = "canvas"
    mask: Literal["centre", "ones"] = "centre"
    combine: Literal["add", "multiply", "subtract"] = "add"
    label_map: LabelMapName = "first_k"
    lam: float = Field(default=1.0e-4, ge=0)  # weight of λ‖W‖²
    # the new input's size on the canvas (its scale); None = its native size, shrunk to the canvas if larger
    # (program: full: the whole canvas)
    input_size: Optional[int] = Field(default=None, ge=1)
    pad_width: Optional[int] = Field(default=None, ge=1)  # program: pad, border; None: 30/224 of the canvas
    labels_per_class: int = Field(default=1, ge=1)  # label_map: multi_label: m source classes per new class

    omitted_at_default: ClassVar[frozenset[str]] = frozenset({"program", "pad_width", "labels_per_class"})


class Reprogrammed(FrozenBackboneModel):
    def __init__(self, backbone: Backbone, program: CanvasProgram, label_map: torch.nn.Module, lam: float):
        super().__init__(backbone)
        # what trains, is checkpointed and selected on validation: the program, and the mapping if it learns or is
        # fitted (FLM/ILM: the mapping chosen with the best epoch's program). Registered first so parameters are
        # named learned.* (program and label_map below are the same objects)
        stateful_map = any(p.requires_grad for p in label_map.parameters()) or isinstance(label_map, FittedLabelMap)
        self.learned = nn.ModuleDict({"program": program, "label_map": label_map}) if stateful_map else program
        self.program = program
        self.label_map = label_map
        self.lam = lam
        # a text-head mapping (semantic) reads the image embedding: the frozen part stops before the source head
        self.reads_embedding = isinstance(label_map, TextLabelMap)

    def encode(self, x01: torch.Tensor) -> torch.Tensor:
        return self.program(fit(x01, self.backbone.info.channels, self.program.input_size))

    def frozen(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.features(x) if self.reads_embedding else self.backbone(x)

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        return self.label_map(logits)

    def regularizer(self) -> torch.Tensor:
        return self.lam * self.program.l2()

    def start_epoch(self, epoch: int, source_counts: Callable[[], torch.Tensor]) -> None:
        if isinstance(self.label_map, FittedLabelMap) and self.label_map.refits(epoch):
            self.label_map.fit(source_counts())


def layout(params: ARParams, canvas: int, task: DatasetInfo) -> Layout:
    """The new input's size on the canvas and the program's mask, as the cell's input program lays them out."""
    return INPUT_PROGRAMS.get(params.program).layout(params, canvas, task)


def program_skip(params: ARParams, canvas: int, task: DatasetInfo) -> tuple[bool, str]:
    """The input program's own rules, then: a program-specific parameter set where this program does not read it."""
    program = INPUT_PROGRAMS.get(params.program)
    skip = program.skip(params, canvas, task)
    if skip[0]:
        return skip
    for name in sorted(program_parameters() - program.takes):
        if getattr(params, name) != type(params).model_fields[name].default:
            return True, f"{name} applies to program: {', '.join(takers(name))}"
    return False, ""


def ar_skip(params: ARParams, backbone: BackboneInfo, num_source: int, task: DatasetInfo) -> tuple[bool, str]:
    canvas = backbone.input_size
    skip = program_skip(params, canvas, task)
    if skip[0]:
        return skip
    skip = text_head_skip(params.label_map, backbone, task)
    if skip[0]:
        return skip
    per_class = takes_labels_per_class(params.label_map)
    if params.labels_per_class > 1 and not per_class:
        return True, f"labels_per_class applies to label_map: {', '.join(filter(takes_labels_per_class, LABEL_MAPS))}"
    lay = layout(params, canvas, task)
    size, mask = lay.input_size, lay.mask
    if params.combine == "multiply" and mask in ("centre", "border"):
        return True, f"combine=multiply with mask={mask} multiplies the input by 0 where no program is: use mask=ones"
    needed = needed_sources(params.label_map, task.num_classes, params.labels_per_class)
    if needed > num_source:
        per = f" ({params.labels_per_class} per class)" if per_class else ""
        return True, f"{params.label_map} mapping needs {needed} source classes{per}, the original has {num_source}"
    if size < 1:
        return True, f"program: {params.program} leaves the input no room on the {canvas}px canvas"
    if size > canvas:
        return True, f"input_size {size} exceeds the {canvas}px canvas"
    if size == canvas and mask == "centre":
        return True, f"a {size}px input fills the {canvas}px canvas: the program has no pixels; " \
                     "set input_size below the canvas or mask: ones"
    return False, ""


def text_head_skip(label_map: str, backbone: BackboneInfo, task: DatasetInfo) -> tuple[bool, str]:
    """A mapping that reads a head built from class names needs a backbone that builds one and class names."""
    if not reads_embedding(label_map):
        return False, ""
    if not backbone.text_heads:
        return True, (f"label_map: {label_map} needs a backbone that builds heads from class names (clip:ARCH/TAG); "
                      f"{backbone.name} does not")
    if task.unnamed:  # most datasets name their classes only once their files are read: those fail when built
        return True, f"label_map: {label_map} reads the task's class names; {task.name} has none"
    return False, ""


def build_program(params: ARParams, info: BackboneInfo, task: DatasetInfo) -> CanvasProgram:
    lay = layout(params, info.input_size, task)
    return CanvasProgram(canvas=info.input_size, channels=info.channels, input_size=lay.input_size, mask=lay.mask,
                         combine=params.combine, border=lay.border)


def build_label_map(params: ARParams, backbone: Backbone, task: DatasetInfo, seed: int) -> nn.Module:
    """The cell's mapping over source logits, or over the image embedding with the task's text head (semantic)."""
    num_source = backbone.feature_dim if reads_embedding(params.label_map) else backbone.num_classes
    label_map = LABEL_MAPS.get(params.label_map)(num_source, task.num_classes, seed, params.labels_per_class)
    if isinstance(label_map, TextLabelMap):
        if not task.class_names:
            raise ValueError(f"label_map: {params.label_map} reads class names; dataset {task.name} has none")
        label_map.use_text_head(backbone.text_head(task.class_names))
    return label_map


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

    def frozen_output(self, method_spec: dict) -> str:
        return "embedding" if reads_embedding(method_spec.get("label_map", "first_k")) else "logits"

    def build(self, backbone: Backbone, task: DatasetInfo, params: ARParams, seed: int) -> Reprogrammed:
        return Reprogrammed(backbone, build_program(params, backbone.info, task),
                            build_label_map(params, backbone, task, seed), params.lam)
