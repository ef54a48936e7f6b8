"""The contract every registered method meets, parametrised over `list_methods()` (as timm's tests run over
`list_models()`): it builds, gives one logit per new class, trains only its `learned` part, round-trips its
checkpoint (the state_dict of `learned`), and, where it packs, gives packed what it gives alone.

A method runs here at its default parameters on the tiny entries: backbone `test_tinycnn` (16px, 10 classes)
and the 5-class task `digits_0to4` (8px), built the way the trainer builds it (`bench.train.build_models`).
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.data import dataset_info
from bench.methods import METHODS, MethodModel, list_methods
from bench.models import create_backbone
from bench.pack import Pack

BACKBONE = "test_tinycnn"
TASK = dataset_info("digits_0to4")


def build(name: str, seed: int = 0, backbone=None) -> MethodModel:
    """The trainer's way: an original (shared when given) or a fresh network, then the method's own init."""
    method = METHODS.get(name)
    if backbone is None:
        torch.manual_seed(100)  # the original model's weights: the same for every seed of a cell
        backbone = create_backbone(BACKBONE) if method.uses_original else None
    torch.manual_seed(seed)
    if backbone is None:
        backbone = create_backbone(BACKBONE, num_classes=TASK.num_classes)
    return method.build(backbone, TASK, method.Params(), seed)


def images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, TASK.channels, TASK.size, TASK.size, generator=torch.Generator().manual_seed(seed))


def labels(n: int = 6) -> torch.Tensor:
    return torch.arange(n) % TASK.num_classes


def fit_if_fitted(model: MethodModel, seed: int = 0) -> None:
    """Run the model's start-of-training hook with made-up counts, as the trainer would with real ones."""
    g = torch.Generator().manual_seed(seed)
    label_map = getattr(model, "label_map", None)
    if hasattr(label_map, "batch_statistic"):  # BAR's mapping fits to its own statistic, not to argmax counts
        outputs, targets = torch.randn(50, 10, generator=g), torch.arange(50) % TASK.num_classes
        model.start_epoch(0, lambda: label_map.batch_statistic(outputs, targets, TASK.num_classes))
        return
    model.start_epoch(0, lambda: torch.randint(0, 50, (10, TASK.num_classes), generator=g))


def outside_learned(model: MethodModel) -> dict[str, torch.Tensor]:
    learned = {t.data_ptr() for t in model.learned.state_dict().values()}
    return {k: v.clone() for k, v in model.state_dict().items() if v.data_ptr() not in learned}


METHOD_NAMES = list_methods()
PACKING = [n for n in METHOD_NAMES if METHODS.get(n).packs and METHODS.get(n).uses_original]


def test_the_tiny_entries_are_registered():
    assert {"ar", "linear_probe", "scratch", "pretrain"} <= set(METHOD_NAMES)
    assert PACKING  # at least one method packs, so the packing contract is exercised


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_declares_what_the_grid_and_analysis_read(name):
    method = METHODS.get(name)
    assert method.name == name
    method.Params()  # every parameter has a default: a grid entry may give just the name
    assert method.skip(method.Params(), create_backbone(BACKBONE).info, 10, TASK) == (False, "")
    assert isinstance(method.label or name, str) and isinstance(method.marker, str)
    assert not (method.makes_original and method.is_baseline)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_builds_and_gives_one_logit_per_new_class(name):
    model = build(name)
    assert isinstance(model, MethodModel) and isinstance(model.learned, torch.nn.Module)
    fit_if_fitted(model)
    model.train()
    assert model(images()).shape == (6, TASK.num_classes)
    model.eval()
    with torch.no_grad():
        out = model(images(3))
    assert out.shape == (3, TASK.num_classes) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_trains_only_its_learned_part(name):
    model = build(name)
    fit_if_fitted(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    learned_ids = {id(p) for p in model.learned.parameters()}
    assert all(id(p) in learned_ids for p in trainable), "a trainable parameter outside `learned`"
    frozen_before = outside_learned(model)
    learned_before = {k: v.detach().clone() for k, v in model.learned.state_dict().items()}
    # every parameter goes to the optimiser, weight decay included: what must not move has to hold by itself
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, weight_decay=0.1)
    model.train()
    loss = F.cross_entropy(model(images()), labels()) + model.regularizer()
    if loss.requires_grad:  # a method that owns its update (black box) has no graph to the program
        loss.backward()
    optimizer.step()
    after = model.state_dict()
    for key, value in frozen_before.items():  # the frozen backbone: bit-identical, BatchNorm statistics too
        assert torch.equal(after[key], value), key
    if any(p.grad is not None and bool(p.grad.any()) for p in model.learned.parameters()):
        assert any(not torch.equal(v, learned_before[k]) for k, v in model.learned.state_dict().items())


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_round_trips_its_checkpoint(name):
    model = build(name, seed=0)
    fit_if_fitted(model, seed=0)
    with torch.no_grad():  # a state no fresh init has
        for p in model.learned.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(5)) * 0.1)
    state = {k: v.clone() for k, v in model.learned.state_dict().items()}
    fresh = build(name, seed=1)
    fit_if_fitted(fresh, seed=1)
    fresh.learned.load_state_dict(state)
    model.eval(), fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(images()), model(images()), rtol=0, atol=0)


@pytest.mark.parametrize("name", PACKING)
def test_packed_gives_what_each_gives_alone(name):
    torch.manual_seed(100)
    shared = create_backbone(BACKBONE)
    models = [build(name, seed=s, backbone=shared) for s in (0, 1)]
    alone = [build(name, seed=s) for s in (0, 1)]
    xs = [images(4, seed=s) for s in (0, 1)]
    for m in (*models, *alone):
        fit_if_fitted(m)
        m.eval()
    with torch.no_grad():
        packed = Pack(models)(xs)
        for p, m, x in zip(packed, alone, xs, strict=True):
            torch.testing.assert_close(p, m(x), rtol=1e-5, atol=1e-6)
