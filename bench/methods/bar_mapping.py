"""`bar`: the multi-label mapping of BAR (Tsai, Chen & Ho, ICML 2020), as its public code fits and applies it.

Fitting (before training, with the initial program): every training image of new class t adds, for each of the
source labels in its top 30 predictions, that label's predicted probability to a sum and 1 to a count for (label,
t); a label's score for t is its mean probability over the images it was in the top 30 of (0 if never). Each new
class ranks the source labels by score and keeps its top 30; a label kept by several classes stays only with the
class that ranks it higher (the same rank: the higher score; then the lower class). Each class then reads the first
m survivors of its list (BAR: m = 6; `labels_per_class`).

Applying: new class t's score is the mean of the m source *probabilities* (not log-probabilities, not logits); the
mapping returns its logarithm, so the cross-entropy over new classes is that of the normalised mean probabilities
(`multi_label` averages the log-probabilities, a geometric mean, which one near-zero label drags down).

Where BAR's code (two new classes, 1,000 source labels) leaves a class with fewer than m survivors it would fail;
here the class fills up with the unused labels it scores highest (then the lower label), so every class reads m
distinct labels and no label serves two classes.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from bench.methods.label_maps import Fit, per_class_each, register_label_map

TOP_K = 30  # BAR's top-30: per image when tallying, per class when ranking


def top_k_probability_tally(source_outputs: torch.Tensor, labels: torch.Tensor, num_target: int) -> torch.Tensor:
    """(num_source, num_target, 2) float64: for each (source label, new class), the summed probability and the
    number of images of that class that had the label among their top `TOP_K` predictions."""
    probs = source_outputs.float().softmax(1).double()
    num_source = probs.shape[1]
    values, index = probs.topk(min(TOP_K, num_source), dim=1)
    cell = (index * num_target + labels[:, None]).flatten()
    sums = torch.bincount(cell, weights=values.flatten(), minlength=num_source * num_target)
    counts = torch.bincount(cell, minlength=num_source * num_target).double()
    return torch.stack([sums, counts], -1).view(num_source, num_target, 2)


def ranked(scores: torch.Tensor) -> list[int]:
    """Source labels by descending score, ties to the lower label."""
    order = sorted(range(len(scores)), key=lambda s: (-float(scores[s]), s))
    return order[:TOP_K]


def bar_assignment(tally: torch.Tensor, per_class: int) -> torch.Tensor:
    """A `top_k_probability_tally` -> (num_target, per_class) source labels, by BAR's rule (module docstring)."""
    num_source, num_target, _ = tally.shape
    if per_class * num_target > num_source:
        raise ValueError(f"{per_class} source labels for each of {num_target} classes needs "
                         f"{per_class * num_target}; the source model has {num_source}")
    sums, counts = tally[..., 0].double(), tally[..., 1].double()
    scores = torch.where(counts > 0, sums / counts.clamp_min(1), torch.zeros_like(sums))  # (source, target)
    lists = [ranked(scores[:, t]) for t in range(num_target)]
    position = [{s: i for i, s in enumerate(lst)} for lst in lists]

    def owner(s: int) -> int:  # the class that ranks s highest: its position, then its score, then the lower class
        return min((t for t in range(num_target) if s in position[t]),
                   key=lambda t: (position[t][s], -float(scores[s, t]), t))

    chosen = [[s for s in lists[t] if owner(s) == t][:per_class] for t in range(num_target)]
    used = {s for c in chosen for s in c}
    for t, picked in enumerate(chosen):  # a class left short fills up with the unused labels it scores highest
        for s in sorted(set(range(num_source)) - used, key=lambda s: (-float(scores[s, t]), s)):
            if len(picked) == per_class:
                break
            picked.append(s)
            used.add(s)
    return torch.tensor(chosen, dtype=torch.long)


class BarLabelMap(nn.Module):
    """New class t: log of the mean probability of source labels `index[t, :]`, fitted by BAR's rule.

    Until the first fit `index` holds the first-k blocks; the trainer fits it before the first step. It reads a
    black box's log-probabilities, or logits (the same new-class probabilities: see `forward`).
    """

    def __init__(self, num_source: int, num_target: int, per_class: int = 1):
        super().__init__()
        if per_class * num_target > num_source:
            raise ValueError(f"{per_class} x {num_target} source labels needed, {num_source} available")
        self.per_class, self.when = per_class, Fit.BEFORE_TRAINING
        self.register_buffer("index", torch.arange(num_target * per_class).view(num_target, per_class))

    def refits(self, epoch: int) -> bool:
        return self.when.due(epoch)

    def batch_statistic(self, source_outputs: torch.Tensor, labels: torch.Tensor, num_target: int) -> torch.Tensor:
        """What the trainer sums over the train split and passes to `fit` (instead of argmax counts)."""
        return top_k_probability_tally(source_outputs, labels, num_target)

    def fit(self, tally: torch.Tensor) -> None:
        self.index.copy_(bar_assignment(tally, self.per_class).to(self.index.device))

    def forward(self, source_outputs: torch.Tensor) -> torch.Tensor:
        # log mean_j exp(x_j) over the class's labels: with log-probabilities (the black box's) exactly the log of
        # the mean probability; with logits that plus log Z, the same for every class, so the same softmax over the
        # new classes. It reads only the chosen labels (a softmax over all of them first would read every one).
        picked = source_outputs.float().index_select(1, self.index.flatten()).view(len(source_outputs),
                                                                                 *self.index.shape)
        return picked.logsumexp(-1) - math.log(self.per_class)


@register_label_map(needs=per_class_each, fitted=Fit.BEFORE_TRAINING, takes_labels_per_class=True)
def bar(num_source: int, num_target: int, seed: int, per_class: int = 1) -> nn.Module:
    """BAR (Tsai et al. 2020): m = `per_class` source labels per class ranked by mean top-30 probability, their
    probabilities averaged."""
    return BarLabelMap(num_source, num_target, per_class)
