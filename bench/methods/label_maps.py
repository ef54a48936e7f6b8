"""Output label mappings h_g: source-task logits -> new-task logits, one registry entry each.

| name | what new class j reads | fitted |
|---|---|---|
| `first_k` | source logit j (Elsayed et al.) | never |
| `random` | a seeded random injective choice of source logit | never |
| `frequency` | FLM: the source class most often predicted for class j (one-to-one, greedy) | before training |
| `iterative` | ILM (Chen et al., ILM-VP 2023): FLM recomputed with the current program | every epoch |
| `multi_label` | the mean of m source logits, chosen by argmax frequency (greedy, as FLM) | before training |
| `bar` | log of the mean of m source probabilities, ranked by mean top-30 probability (BAR) | before training |
| `learned` | a trained linear layer over all source logits (AutoVP's FullyMap) | with the program |
| `semantic` | its class name's text embedding against the image embedding (CLIP; AutoVP's CLIP output) | never |

An entry is a factory `(num_source, num_target, seed, labels_per_class) -> nn.Module` decorated with
`@register_label_map(...)`, declaring how many source classes it needs, whether `labels_per_class` applies to it
and when it is fitted. A fitted mapping meets `FittedLabelMap`: the trainer fills it through the model's
`start_epoch` hook with the source x target count matrix of the source model's predictions on the new task's
train split (under the current program, no gradient). A mapping declared `reads_embedding` is a `TextLabelMap`:
it reads the backbone's image embedding instead of its source logits (`num_source` is then the embedding's size),
through a head the backbone builds from the new task's class names (`Backbone.text_head`: CLIP's text tower).
A new mapping may sit here or in any module of bench/methods (found by discovery);
tests/test_contract_label_maps.py checks every entry.
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from bench.registry import Registry


class Fit(str, enum.Enum):
    """When a fitted mapping is (re)fitted from the source model's predictions."""

    NEVER = "never"
    BEFORE_TRAINING = "before training"  # once, with the initial program (epoch 0)
    EVERY_EPOCH = "every epoch"  # at the start of every epoch, with the current program

    def due(self, epoch: int) -> bool:
        return self is Fit.EVERY_EPOCH or (self is Fit.BEFORE_TRAINING and epoch == 0)


@runtime_checkable
class FittedLabelMap(Protocol):
    """A mapping fitted from prediction counts, not trained by gradient (FLM, ILM, multi-label)."""

    def refits(self, epoch: int) -> bool:
        """Whether it is fitted again at the start of `epoch`."""

    def fit(self, counts: torch.Tensor) -> None:
        """(num_source, num_target) argmax counts of the source model on the new task's train split, or the sum of
        the mapping's own `batch_statistic(source_outputs, labels, num_target)` where it has one (`bar`)."""


@runtime_checkable
class TextLabelMap(Protocol):
    """A mapping over the image embedding through a head built from the new task's class names (`semantic`)."""

    def use_text_head(self, head: nn.Linear) -> None:
        """The head `Backbone.text_head(class_names)` built; set once, when the model is built."""


# (num_source, num_target, seed, labels_per_class) -> module; labels_per_class matters where it applies
LabelMapFactory = Callable[[int, int, int, int], nn.Module]
# (num_target, labels_per_class) -> how many source classes the mapping needs (0: any number will do)
SourcesNeeded = Callable[[int, int], int]
LABEL_MAPS: Registry[LabelMapFactory] = Registry("label mapping", package="bench.methods")


def one_per_class(num_target: int, per_class: int) -> int:
    return num_target


def per_class_each(num_target: int, per_class: int) -> int:
    return num_target * per_class


def any_number(num_target: int, per_class: int) -> int:
    return 0


def register_label_map(*, needs: SourcesNeeded = one_per_class, fitted: Fit = Fit.NEVER,
                       takes_labels_per_class: bool = False,
                       reads_embedding: bool = False) -> Callable[[LabelMapFactory], LabelMapFactory]:
    """`@register_label_map(needs=..., fitted=...)` on a factory registers it under the factory's name."""
    return LABEL_MAPS.decorator(needs=needs, fitted=Fit(fitted), takes_labels_per_class=takes_labels_per_class,
                                reads_embedding=reads_embedding)


def needed_sources(name: str, num_target: int, per_class: int) -> int:
    """How many source classes mapping `name` needs (0: any number will do)."""
    return LABEL_MAPS.metadata(name)["needs"](num_target, per_class)


def takes_labels_per_class(name: str) -> bool:
    return LABEL_MAPS.metadata(name)["takes_labels_per_class"]


def reads_embedding(name: str) -> bool:
    """True: mapping `name` reads the image embedding through a text head (a `TextLabelMap`), not source logits."""
    return LABEL_MAPS.metadata(name)["reads_embedding"]


class FixedLabelMap(nn.Module):
    """A hard-coded one-to-one mapping: new class j reads source logit `index[j]`."""

    def __init__(self, index: torch.Tensor):
        super().__init__()
        self.register_buffer("index", index.long())

    def forward(self, source_logits: torch.Tensor) -> torch.Tensor:
        return source_logits.index_select(1, self.index)


def greedy_assignment(counts: torch.Tensor, per_class: int = 1) -> torch.Tensor:
    """(num_source, num_target) prediction counts -> (num_target, per_class) source classes, none used twice.

    ILM-VP's greedy rule: repeatedly take the largest remaining count (source s, target t), give s to t, remove s
    from every target, and retire t once it holds `per_class` sources. Ties go to the first maximum in row-major
    order: the lower source class, then the lower target class.
    """
    num_source, num_target = counts.shape
    if per_class * num_target > num_source:
        raise ValueError(f"{per_class} source class(es) for each of {num_target} target classes needs "
                         f"{per_class * num_target}; the source model has {num_source}")
    left = counts.detach().to("cpu", torch.float64).clone()
    chosen: list[list[int]] = [[] for _ in range(num_target)]
    for _ in range(per_class * num_target):
        s, t = divmod(int(left.argmax()), num_target)  # argmax returns the first maximum of the flattened matrix
        chosen[t].append(s)
        left[s, :] = -1
        if len(chosen[t]) == per_class:
            left[:, t] = -1
    return torch.tensor([sorted(c) for c in chosen], dtype=torch.long)


class FrequencyLabelMap(nn.Module):
    """FLM, ILM and multi-label: new class j reads the mean of source logits `index[j, :]`, fitted by frequency.

    Until the first fit, `index` holds the first-k blocks (0..m-1 for class 0, ...); the trainer fits it before
    the first step. `index` is a buffer of the model's learned part: checkpointed, and selected on validation
    with the program it was fitted for.
    """

    def __init__(self, num_source: int, num_target: int, per_class: int = 1, when: Fit = Fit.BEFORE_TRAINING):
        super().__init__()
        if per_class * num_target > num_source:
            raise ValueError(f"{per_class} x {num_target} source classes needed, {num_source} available")
        self.per_class, self.when = per_class, when
        self.register_buffer("index", torch.arange(num_target * per_class).view(num_target, per_class))

    def refits(self, epoch: int) -> bool:
        """FLM and multi-label: once, before training; ILM: at the start of every epoch."""
        return self.when.due(epoch)

    def fit(self, counts: torch.Tensor) -> None:
        self.index.copy_(greedy_assignment(counts, self.per_class).to(self.index.device))

    def forward(self, source_logits: torch.Tensor) -> torch.Tensor:
        picked = source_logits.index_select(1, self.index.flatten())
        return picked.view(len(source_logits), *self.index.shape).mean(-1)


@register_label_map()
def first_k(num_source: int, num_target: int, seed: int, per_class: int = 1) -> nn.Module:
    """Elsayed et al.: new class j <- source class j."""
    return FixedLabelMap(torch.arange(num_target))


@register_label_map()
def random(num_source: int, num_target: int, seed: int, per_class: int = 1) -> nn.Module:
    """A fixed random injective mapping, drawn from the cell's seed."""
    g = torch.Generator().manual_seed(seed)
    return FixedLabelMap(torch.randperm(num_source, generator=g)[:num_target])


@register_label_map(fitted=Fit.BEFORE_TRAINING)
def frequency(num_source: int, num_target: int, seed: int, per_class: int = 1) -> nn.Module:
    """FLM: fitted once, before training, from the source model's predictions with the initial program."""
    return FrequencyLabelMap(num_source, num_target)


@register_label_map(fitted=Fit.EVERY_EPOCH)
def iterative(num_source: int, num_target: int, seed: int, per_class: int = 1) -> nn.Module:
    """ILM (ILM-VP, Chen et al. 2023): FLM recomputed at the start of every epoch with the current program."""
    return FrequencyLabelMap(num_source, num_target, when=Fit.EVERY_EPOCH)


@register_label_map(needs=per_class_each, fitted=Fit.BEFORE_TRAINING, takes_labels_per_class=True)
def multi_label(num_source: int, num_target: int, seed: int, per_class: int = 1) -> nn.Module:
    """m = `per_class` source classes per new class, chosen by frequency before training; their logits averaged."""
    return FrequencyLabelMap(num_source, num_target, per_class=per_class)


@register_label_map(needs=any_number)
def learned(num_source: int, num_target: int, seed: int, per_class: int = 1) -> nn.Module:
    """Thesis Experiment 2, tweak 1 (AutoVP's "FullyMap"): a trained linear map over all source logits.

    Initialised from the cell's seed, so a packed cell starts where it would alone.
    """
    g = torch.Generator().manual_seed(seed)
    layer = nn.Linear(num_source, num_target)
    bound = 1 / num_source**0.5  # nn.Linear's default init range, drawn from the cell's own generator
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=g)
        layer.bias.uniform_(-bound, bound, generator=g)
    return layer


class SemanticLabelMap(nn.Module):
    """New class j's logit: the image embedding against the text embedding of class j's prompts, CLIP-scaled.

    The head (`Backbone.text_head`) is frozen text, copied into buffers: nothing trains, and a model rebuilt from
    the same class names has the same head. Until `use_text_head` the buffers are NaN, so a mapping that never got
    its head cannot pass for one that did.
    """

    def __init__(self, embed_dim: int, num_target: int):
        super().__init__()
        self.register_buffer("weight", torch.full((num_target, embed_dim), float("nan")))
        self.register_buffer("bias", torch.zeros(num_target))

    def use_text_head(self, head: nn.Linear) -> None:
        if head.weight.shape != self.weight.shape:
            raise ValueError(f"a text head of shape {tuple(head.weight.shape)} for a {tuple(self.weight.shape)} "
                             "semantic mapping")
        with torch.no_grad():
            self.weight.copy_(head.weight)
            self.bias.copy_(head.bias if head.bias is not None else torch.zeros_like(self.bias))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return F.linear(embedding, self.weight, self.bias)


@register_label_map(needs=any_number, reads_embedding=True)
def semantic(num_source: int, num_target: int, seed: int, per_class: int = 1) -> nn.Module:
    """The new task's class names through the prompt templates give a zero-shot head on the image embedding
    (`num_source`: its size): AutoVP's CLIP output, templates averaged as open_clip's zero-shot classifier does.
    Needs a backbone with `text_heads` (clip:ARCH/TAG) and a task with class names; the grid skips it elsewhere."""
    return SemanticLabelMap(num_source, num_target)
