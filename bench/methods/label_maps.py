"""Output label mappings h_g: source-task logits -> new-task logits."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from bench.registry import Registry


class FixedLabelMap(nn.Module):
    """A hard-coded one-to-one mapping: new class j reads source logit `index[j]`."""

    def __init__(self, index: torch.Tensor):
        super().__init__()
        self.register_buffer("index", index.long())

    def forward(self, source_logits: torch.Tensor) -> torch.Tensor:
        return source_logits.index_select(1, self.index)


LabelMapFactory = Callable[[int, int, int], nn.Module]  # (num_source, num_target, seed) -> module
LABEL_MAPS: Registry[LabelMapFactory] = Registry("label mapping")


@LABEL_MAPS.decorator()
def first_k(num_source: int, num_target: int, seed: int) -> nn.Module:
    """Elsayed et al.: new class j <- source class j."""
    return FixedLabelMap(torch.arange(num_target))


@LABEL_MAPS.decorator()
def random(num_source: int, num_target: int, seed: int) -> nn.Module:
    """A fixed random injective mapping, drawn from the cell's seed."""
    g = torch.Generator().manual_seed(seed)
    return FixedLabelMap(torch.randperm(num_source, generator=g)[:num_target])


@LABEL_MAPS.decorator()
def learned(num_source: int, num_target: int, seed: int) -> nn.Module:
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
