"""The contract every registered label mapping meets, parametrised over `LABEL_MAPS`: it maps source logits to
one logit per new class, reads as many source classes as it declares (`needs`), is a `FittedLabelMap` exactly when
it declares a fitting schedule and refits on it, is seeded, and round-trips its state (a checkpoint)."""
from __future__ import annotations

import pytest
import torch

from bench.methods.label_maps import (
    LABEL_MAPS,
    Fit,
    FittedLabelMap,
    TextLabelMap,
    needed_sources,
    reads_embedding,
    takes_labels_per_class,
)

NAMES = LABEL_MAPS.names()
NUM_SOURCE, NUM_TARGET = 12, 4


def per_class(name: str) -> int:
    return 2 if takes_labels_per_class(name) else 1


def build(name: str, seed: int = 0, num_source: int = NUM_SOURCE, num_target: int = NUM_TARGET):
    return LABEL_MAPS.get(name)(num_source, num_target, seed, per_class(name))


def counts(seed: int = 0, num_source: int = NUM_SOURCE, num_target: int = NUM_TARGET, label_map=None) -> torch.Tensor:
    """What the trainer fits `label_map` to: argmax counts, or the sum of the mapping's own `batch_statistic`
    over random source outputs (BAR's top-30 probabilities)."""
    g = torch.Generator().manual_seed(seed)
    if hasattr(label_map, "batch_statistic"):
        outputs, labels = torch.randn(50, num_source, generator=g), torch.randint(0, num_target, (50,), generator=g)
        return label_map.batch_statistic(outputs, labels, num_target)
    return torch.randint(0, 100, (num_source, num_target), generator=g)


def text_head(num_source: int = NUM_SOURCE, num_target: int = NUM_TARGET) -> torch.nn.Linear:
    """A head as `Backbone.text_head` gives one: one row per new class over the `num_source` inputs."""
    torch.manual_seed(11)
    return torch.nn.Linear(num_source, num_target, bias=False)


def prepared(name: str, seed: int = 0, **sizes):
    """Built, and fitted once where it is fitted (as the trainer does before the first step); a mapping that reads
    a text head gets one (as ar's build does; its "source logits" are then the image embedding)."""
    label_map = build(name, seed, **sizes)
    if isinstance(label_map, FittedLabelMap):
        label_map.fit(counts(seed, sizes.get("num_source", NUM_SOURCE), sizes.get("num_target", NUM_TARGET),
                             label_map))
    if isinstance(label_map, TextLabelMap):
        label_map.use_text_head(text_head(sizes.get("num_source", NUM_SOURCE), sizes.get("num_target", NUM_TARGET)))
    return label_map


def reads(label_map, num_source: int = NUM_SOURCE) -> list[set[int]]:
    """For each new class, the source logits its output depends on (the Jacobian's support)."""
    logits = torch.randn(1, num_source, requires_grad=True)
    jacobian = torch.autograd.functional.jacobian(lambda x: label_map(x), logits)[0, :, 0]
    return [set(row.nonzero().flatten().tolist()) for row in jacobian]


def test_the_shipped_mappings_are_registered():
    assert {"first_k", "random", "frequency", "iterative", "multi_label", "learned", "semantic"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_declares_what_it_needs(name):
    meta = LABEL_MAPS.metadata(name)
    assert set(meta) >= {"needs", "fitted", "takes_labels_per_class", "reads_embedding"}
    assert isinstance(meta["fitted"], Fit)
    assert isinstance(build(name), TextLabelMap) == reads_embedding(name)
    assert needed_sources(name, NUM_TARGET, per_class(name)) in (0, NUM_TARGET * per_class(name))


@pytest.mark.parametrize("name", NAMES)
def test_maps_source_logits_to_one_logit_per_new_class(name):
    label_map = prepared(name)
    assert isinstance(label_map, torch.nn.Module)
    out = label_map(torch.randn(5, NUM_SOURCE))
    assert out.shape == (5, NUM_TARGET) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_reads_as_many_source_classes_as_it_declares(name):
    needed = needed_sources(name, NUM_TARGET, per_class(name))
    if needed == 0:  # any number will do: fewer sources than new classes too
        assert prepared(name, num_source=NUM_TARGET - 1)(torch.randn(2, NUM_TARGET - 1)).shape == (2, NUM_TARGET)
        return
    # exactly as many as it needs is enough, and then each new class reads source classes of its own
    read = reads(prepared(name, num_source=needed), num_source=needed)
    assert all(read) and sum(len(r) for r in read) == len(set().union(*read)) <= needed


@pytest.mark.parametrize("name", NAMES)
def test_is_a_fitted_map_exactly_when_it_declares_a_schedule_and_refits_on_it(name):
    fitted = LABEL_MAPS.metadata(name)["fitted"]
    label_map = build(name)
    assert isinstance(label_map, FittedLabelMap) == (fitted is not Fit.NEVER)
    if fitted is Fit.NEVER:
        return
    assert [label_map.refits(e) for e in range(3)] == [fitted.due(e) for e in range(3)]
    assert list(label_map.parameters()) == []  # fitted, not trained: nothing for the optimiser
    label_map.fit(counts(1, label_map=label_map))
    again = build(name, seed=7)
    again.fit(counts(1, label_map=again))
    logits = torch.randn(3, NUM_SOURCE)
    torch.testing.assert_close(label_map(logits), again(logits))  # the fit depends on the counts alone


@pytest.mark.parametrize("name", NAMES)
def test_is_seeded_and_round_trips_its_state(name):
    a, b = prepared(name, seed=3), prepared(name, seed=3)
    logits = torch.randn(3, NUM_SOURCE)
    torch.testing.assert_close(a(logits), b(logits), rtol=0, atol=0)  # packed cells start where they would alone
    fresh = build(name, seed=4)
    fresh.load_state_dict(a.state_dict())
    torch.testing.assert_close(fresh(logits), a(logits), rtol=0, atol=0)


@pytest.mark.parametrize("name", [n for n in NAMES if not takes_labels_per_class(n)])
def test_labels_per_class_changes_nothing_where_it_does_not_apply(name):
    one, three = LABEL_MAPS.get(name)(NUM_SOURCE, NUM_TARGET, 0, 1), LABEL_MAPS.get(name)(NUM_SOURCE, NUM_TARGET, 0, 3)
    for label_map in (one, three):
        if isinstance(label_map, TextLabelMap):
            label_map.use_text_head(text_head())
    logits = torch.randn(2, NUM_SOURCE)
    torch.testing.assert_close(one(logits), three(logits), rtol=0, atol=0)


def test_ar_accepts_every_registered_mapping_and_an_unknown_one_lists_them():
    from pydantic import ValidationError

    from bench.methods.ar import ARParams

    assert [ARParams(label_map=n).label_map for n in NAMES] == NAMES
    with pytest.raises(ValidationError, match=f"unknown label mapping 'bogus'; known: {', '.join(NAMES)}"):
        ARParams(label_map="bogus")


@pytest.mark.parametrize("name", [n for n in NAMES if reads_embedding(n)])
def test_a_text_head_mapping_is_its_head_frozen_and_nan_until_it_has_one(name):
    assert torch.isnan(build(name)(torch.randn(2, NUM_SOURCE))).all()  # never a plausible answer without a head
    label_map, head, x = prepared(name), text_head(), torch.randn(3, NUM_SOURCE)
    torch.testing.assert_close(label_map(x), head(x))
    assert [p for p in label_map.parameters() if p.requires_grad] == []  # text, not trained
    with pytest.raises(ValueError, match="text head of shape"):
        label_map.use_text_head(text_head(NUM_SOURCE + 1))
