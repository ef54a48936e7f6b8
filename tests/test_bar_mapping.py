"""BAR's label mapping (`label_map: bar`, Tsai et al. 2020) on examples worked by hand, and `blackbox`'s default."""
from __future__ import annotations

import pytest
import torch

from bench.methods import METHODS
from bench.methods.bar_mapping import TOP_K, bar_assignment, top_k_probability_tally
from bench.methods.blackbox import resolved
from bench.methods.label_maps import LABEL_MAPS

# two images of new class 0, one of class 1, over 5 source labels (all within the top 30)
PROBS = torch.tensor([[0.50, 0.20, 0.10, 0.10, 0.10],
                      [0.30, 0.40, 0.10, 0.10, 0.10],
                      [0.35, 0.05, 0.10, 0.20, 0.30]], dtype=torch.float64)
LABELS = torch.tensor([0, 0, 1])


def test_bar_ranks_by_mean_probability_and_gives_a_shared_label_to_the_class_ranking_it_higher():
    tally = top_k_probability_tally(PROBS.log(), LABELS, 2)
    # by hand: mean probabilities, class 0: [.40 .30 .10 .10 .10], class 1: [.35 .05 .10 .20 .30]
    scores = tally[..., 0] / tally[..., 1]
    torch.testing.assert_close(scores.T, torch.tensor([[.40, .30, .10, .10, .10], [.35, .05, .10, .20, .30]],
                                                      dtype=torch.float64))
    # ranked lists: class 0 [0 1 2 3 4] (ties to the lower label), class 1 [0 4 3 2 1]. Label 0 is first in both:
    # the higher score (.40) keeps it in class 0; 1 and 2 rank higher in class 0, 3 and 4 in class 1
    assert bar_assignment(tally, per_class=2).tolist() == [[0, 1], [4, 3]]
    # argmax-count greedy (`multi_label`) saw no argmax of class 1 and gave it the lowest free labels instead
    multi = LABEL_MAPS.get("multi_label")(5, 2, 0, 2)
    multi.fit(torch.tensor([[1, 1], [1, 0], [0, 0], [0, 0], [0, 0]]))
    assert multi.index.tolist() == [[0, 1], [2, 3]]


def test_bar_averages_probabilities_not_log_probabilities():
    bar = LABEL_MAPS.get("bar")(5, 2, 0, 2)
    bar.fit(top_k_probability_tally(PROBS.log(), LABELS, 2))
    p = torch.tensor([[0.1, 0.2, 0.3, 0.1, 0.3]])
    # class 0 reads labels 0, 1: (0.1 + 0.2) / 2; class 1 reads 4, 3: (0.3 + 0.1) / 2
    torch.testing.assert_close(bar(p.log()).exp(), torch.tensor([[0.15, 0.20]]))
    # logits (log-probabilities plus a constant) give the same new-class probabilities
    torch.testing.assert_close(bar(p.log() + 3.0), bar(p.log()) + 3.0)
    multi = LABEL_MAPS.get("multi_label")(5, 2, 0, 2)
    multi.index.copy_(bar.index)
    assert not torch.allclose(multi(p.log()).exp(), torch.tensor([[0.15, 0.20]]))  # the geometric mean
    assert list(bar.parameters()) == []  # fitted, not trained


def test_bar_tallies_only_each_images_top_30():
    probs = torch.arange(1, 41, dtype=torch.float64).softmax(0)[None]  # label 39 most likely, label 0 least
    tally = top_k_probability_tally(probs.log(), torch.tensor([0]), 1)
    assert tally[:, 0, 1].tolist() == [0.0] * (40 - TOP_K) + [1.0] * TOP_K
    torch.testing.assert_close(tally[10:, 0, 0], probs[0, 10:])


def test_a_class_left_short_fills_up_with_the_unused_labels_it_scores_highest():
    # both classes rank label 0 then 1 first; class 0 scores them higher and keeps both (and 2, which it ranks
    # higher); class 1 keeps only 3 and fills up with the one unused label, 2
    probs = torch.tensor([[0.6, 0.3, 0.05, 0.05], [0.5, 0.2, 0.1, 0.2]], dtype=torch.float64)
    tally = top_k_probability_tally(probs.log(), torch.tensor([0, 1]), 2)
    assert bar_assignment(tally, per_class=2).tolist() == [[0, 1], [3, 2]]
    with pytest.raises(ValueError, match="needs 6"):
        bar_assignment(torch.ones(5, 3, 2), per_class=2)


def test_blackbox_maps_labels_as_bar_does_by_default():
    params = METHODS.get("blackbox").Params()
    assert params.label_map == "bar"
    assert resolved(params, 1000, 10).labels_per_class == 6  # BAR's m on ImageNet
    assert resolved(params, 10, 5).labels_per_class == 2  # as many as fit without overlap
