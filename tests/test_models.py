"""Backbones: one contract suite parametrised over every registered backbone, plus weights resolution."""
from __future__ import annotations

import pytest
import torch
import torchvision
from fixtures_weights import put_in_torch_hub, torch_hub_path

from bench.models import (
    Backbone,
    WeightsMissing,
    backbone_info,
    create_backbone,
    list_backbones,
)
from bench.models.backbone import IMAGENET_MEAN, IMAGENET_STD
from bench.registry import UnknownName

BACKBONES = list_backbones()
SMALL = 32  # the 224px torchvision nets pool adaptively: 32px (1x1 after the last stage) is cheap on CPU


def small_size(name: str) -> int:
    size = backbone_info(name).input_size
    if name == "thesis_cnn":  # no adaptive pooling: its smallest input
        return 46
    return SMALL if size == 224 else size


def batch(model: Backbone, n: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, model.info.channels, model.info.input_size, model.info.input_size, generator=g)


@pytest.fixture(scope="module")
def built() -> dict[str, Backbone]:
    """One random-init instance per backbone, built on first use (VGG-16 alone takes seconds to initialise)."""

    class Lazy(dict):
        def __missing__(self, name: str) -> Backbone:
            torch.manual_seed(0)
            self[name] = create_backbone(name, input_size=small_size(name)).eval()
            return self[name]

    return Lazy()


def test_registry_lists_the_expected_backbones():
    assert BACKBONES == sorted(BACKBONES)
    assert {"smallcnn", "smallcnn_rgb", "test_tinycnn", "resnet18", "resnet50", "mobilenet_v2", "vgg16"} <= set(
        BACKBONES)


@pytest.mark.parametrize("name", BACKBONES)
def test_info_is_consistent(name):
    info = backbone_info(name)
    assert info.name == name
    assert info.channels in (1, 3)
    assert len(info.mean) == len(info.std) == info.channels
    assert all(s > 0 for s in info.std)
    if info.input_size == 224 and name != "thesis_cnn":  # the thesis's from-scratch CNN: 224, no weights
        assert info.weights == ("imagenet",) and info.num_classes == 1000
        if not info.description.startswith("timm"):  # timm: its own pretrained_cfg, see test_thesis_backbones
            assert (info.mean, info.std) == (IMAGENET_MEAN, IMAGENET_STD)


@pytest.mark.parametrize("name", BACKBONES)
def test_forward_gives_one_logit_per_original_class(name, built):
    model = built[name]
    assert model.info.input_size == small_size(name)  # the input_size override reaches the model
    with torch.no_grad():
        out = model(batch(model))
    assert out.shape == (1, backbone_info(name).num_classes)
    assert model.num_classes == backbone_info(name).num_classes
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", BACKBONES)
def test_features_are_the_penultimate_layer(name, built):
    model = built[name]
    x = batch(model)
    with torch.no_grad():
        h = model.features(x)
        out = model(x)
    assert h.shape == (1, model.feature_dim)
    assert model.feature_dim == model.head.in_features
    torch.testing.assert_close(model.head(h), out)


@pytest.mark.parametrize("name", BACKBONES)
def test_normalisation_is_the_backbones_own(name, built):
    model = built[name]
    info = backbone_info(name)
    c = info.channels
    torch.testing.assert_close(model.mean, torch.tensor(info.mean).view(1, c, 1, 1))
    torch.testing.assert_close(model.std, torch.tensor(info.std).view(1, c, 1, 1))
    # not part of the state dict: a checkpoint holds weights, the normalisation comes from the registry
    assert "mean" not in model.state_dict() and "std" not in model.state_dict()
    # features() sees (x - mean) / std: feeding exactly the mean gives what the body makes of zeros
    with torch.no_grad():
        s = model.info.input_size
        x = model.mean.expand(1, c, s, s).contiguous()
        torch.testing.assert_close(model.features(x), model.body(torch.zeros_like(x)))


@pytest.mark.parametrize("name", BACKBONES)
def test_replace_head_gives_k_outputs_on_the_same_features(name, built):
    model = built[name]
    old_head = model.head
    try:
        model.replace_head(3)
        assert isinstance(model.head, torch.nn.Linear) and model.head is not old_head
        assert model.num_classes == 3 and model.head.in_features == old_head.in_features
        with torch.no_grad():
            assert model(batch(model)).shape == (1, 3)
    finally:
        model.head = old_head


@pytest.mark.parametrize("name", BACKBONES)
def test_new_head_then_freeze(name):
    torch.manual_seed(0)
    model = create_backbone(name, num_classes=5, input_size=small_size(name))
    assert model.num_classes == 5 and model.training
    assert all(p.requires_grad for p in model.parameters())
    frozen = model.freeze()
    assert frozen is model
    assert not any(p.requires_grad for p in model.parameters())
    assert not any(m.training for m in model.modules())
    x = batch(model, 2).requires_grad_(True)
    out = model(x)
    assert out.shape == (2, 5)
    out.sum().backward()  # gradients still reach the input (reprogramming needs them), never the weights
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_frozen_backbone_stays_in_eval_mode():
    model = create_backbone("test_tinycnn").freeze()
    model.train()
    assert not any(m.training for m in model.modules())


def test_num_classes_equal_to_the_original_keeps_the_head():
    torch.manual_seed(0)
    a = create_backbone("test_tinycnn")
    torch.manual_seed(0)
    b = create_backbone("test_tinycnn", num_classes=10)
    torch.testing.assert_close(a.head.weight, b.head.weight)


def test_random_init_follows_the_seed():
    torch.manual_seed(1)
    a = create_backbone("smallcnn")
    torch.manual_seed(1)
    b = create_backbone("smallcnn")
    torch.manual_seed(2)
    c = create_backbone("smallcnn")
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), key
    assert not torch.equal(a.head.weight, c.head.weight)


# --------------------------------------------------------------------------- ImageNet weights, offline


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = tmp_path / "torch" / "hub"
    if torch.hub.get_dir() != str(hub):  # set_dir() was called earlier in this process: override it too
        old = torch.hub.get_dir()
        torch.hub.set_dir(str(hub))
        yield hub
        torch.hub.set_dir(old)
    else:
        yield hub


def test_weights_path_honours_torch_home(torch_home):
    path = torch_hub_path("resnet18")
    assert path.parent == torch_home / "checkpoints"
    assert path.name == "resnet18-f37072fd.pth"  # torchvision's file name: `prepare` puts it exactly there


def test_imagenet_weights_are_read_from_the_local_hub_cache(torch_home):
    torch.manual_seed(1234)
    reference = torchvision.models.resnet18(weights=None).state_dict()
    put_in_torch_hub(torch_hub_path("resnet18"), reference)

    torch.manual_seed(0)  # a different seed: equal tensors can only come from the file
    model = create_backbone("resnet18", weights="imagenet", input_size=SMALL)
    assert model.num_classes == 1000
    assert torch.equal(model.body.conv1.weight, reference["conv1.weight"])
    assert torch.equal(model.body.layer4[1].bn2.running_var, reference["layer4.1.bn2.running_var"])
    assert torch.equal(model.head.weight, reference["fc.weight"])
    assert torch.equal(model.head.bias, reference["fc.bias"])
    assert isinstance(model.body.fc, torch.nn.Identity)

    new_task = create_backbone("resnet18", weights="imagenet", num_classes=4, input_size=SMALL)
    assert torch.equal(new_task.body.conv1.weight, reference["conv1.weight"])
    assert new_task.num_classes == 4


def test_missing_imagenet_weights_say_how_to_fetch_them(torch_home):
    path = torch_hub_path("resnet18")
    with pytest.raises(WeightsMissing) as info:
        create_backbone("resnet18", weights="imagenet", input_size=SMALL)
    message = str(info.value)
    assert "reprogbench prepare --weights resnet18" in message
    assert str(path) in message
    assert isinstance(info.value, FileNotFoundError)
    assert not path.parent.exists()  # nothing downloaded, nothing created


def test_imagenet_weights_on_a_small_cnn_are_refused():
    with pytest.raises(ValueError, match=r"'smallcnn' has no weights 'imagenet'.*none"):
        create_backbone("smallcnn", weights="imagenet")


def test_unknown_backbone_lists_the_known_ones():
    with pytest.raises(UnknownName) as info:
        create_backbone("resnet19")
    message = str(info.value)
    assert message.startswith("unknown backbone 'resnet19'; known: ")
    assert message.endswith(", ".join(BACKBONES))
    with pytest.raises(KeyError):  # UnknownName is a KeyError, for callers that catch that
        backbone_info("resnet19")
