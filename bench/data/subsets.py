"""Class subsets of registered datasets, one line each (`register_subset`: re-labelled 0..k-1 in the order given)."""
from __future__ import annotations

from . import synthetic, torchvision_sets  # noqa: F401  the bases register before their subsets
from .registry import register_subset

register_subset("mnist_01", "mnist", (0, 1))
register_subset("fashion_mnist_01", "fashion_mnist", (0, 1))
register_subset("digits_01", "digits", (0, 1))
register_subset("cifar10_01", "cifar10", (0, 1))
# halves of the demo's tasks, so that two of them fit on a 10-class original with disjoint source classes
register_subset("digits_0to4", "digits", (0, 1, 2, 3, 4))
register_subset("squares_1to5", "squares", (0, 1, 2, 3, 4))  # 1..5 squares (labels 0..4)
