"""Backbones named by library (`timm:<model>.<tag>`, `torchvision:<model>.<WEIGHTS>`): what they say is the library's
own config, they train, body + head is the library's model, their weights load from the real cache layout offline,
and a short name is its library name under another name."""
from __future__ import annotations

import dataclasses

import pytest
import timm
import torch
import torchvision
from fixtures_weights import put_in_hf_cache, put_in_torch_hub, torch_hub_path

from bench.models import WeightsMissing, backbone_info, create_backbone
from bench.models.registry import alias_of, known_backbone
from bench.models.weights import download_weights, weights_file, weights_host, weights_path
from bench.registry import UnknownName

TIMM = "timm:mobilenetv3_small_050.lamb_in1k"  # 1.6M parameters: a real timm classifier that builds in a blink
TIMM_VIT = "timm:vit_tiny_patch16_224.augreg_in21k_ft_in1k"  # fixed_input_size: timm builds it for the size asked
RESNET18 = "torchvision:resnet18.IMAGENET1K_V1"
VIT = "torchvision:vit_b_16.IMAGENET1K_V1"
SMALL = 32


def images(n: int = 2, size: int = SMALL) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def library_model(name: str, **kwargs) -> torch.nn.Module:
    """The unsplit classifier the library itself builds for `name`, random init."""
    prefix, spec = name.split(":")
    if prefix == "timm":
        return timm.create_model(spec, pretrained=False, **kwargs)
    return torchvision.models.get_model(spec.split(".")[0], weights=None, **kwargs)


def one_training_step(model) -> None:
    """One forward + backward + SGD step moves every parameter that has a gradient, and all gradients are finite."""
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(images(4)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert sum(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)) > len(before) // 2


# --------------------------------------------------------------------------- what they say: the library's config


def test_timm_info_is_its_pretrained_cfg():
    cfg = timm.models.get_pretrained_cfg(TIMM.removeprefix("timm:"))
    info = backbone_info(TIMM)
    assert info.name == TIMM and info.weights == ("imagenet",) and info.num_classes == cfg.num_classes == 1000
    assert (info.channels, info.input_size, info.input_size) == tuple(cfg.input_size)
    assert (info.mean, info.std) == (tuple(cfg.mean), tuple(cfg.std))
    vit = backbone_info(TIMM_VIT)  # a ViT in timm: Inception-style [-1, 1] normalisation, read, not assumed
    assert (vit.mean, vit.std) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert backbone_info("timm:vit_base_patch16_224.augreg_in21k").weights == ("in21k",)  # 21,843 classes


@pytest.mark.parametrize("name", [RESNET18, VIT, "torchvision:swin_t.IMAGENET1K_V1",
                                  "torchvision:resnet50.IMAGENET1K_V2", "torchvision:vit_b_16.IMAGENET1K_SWAG_E2E_V1"])
def test_torchvision_info_is_its_weights_transforms(name):
    model, tag = name.removeprefix("torchvision:").split(".")
    weights = torchvision.models.get_model_weights(model)[tag]
    transforms = weights.transforms()
    info = backbone_info(name)
    assert info.input_size == transforms.crop_size[0] and info.num_classes == len(weights.meta["categories"])
    assert (info.mean, info.std) == (tuple(transforms.mean), tuple(transforms.std))
    assert info.weights == ("imagenet",) and weights_file(name).source() == weights.url
    assert weights_host(name) == "download.pytorch.org"
    if tag == "IMAGENET1K_SWAG_E2E_V1":
        assert info.input_size == 384  # the SWAG ViT is fine-tuned at 384: its info says so


# --------------------------------------------------------------------------- they build, train, and split exactly


@pytest.mark.parametrize("name", [TIMM, TIMM_VIT, RESNET18, VIT])
def test_build_train_and_body_plus_head_is_the_library_model(name):
    torch.manual_seed(0)
    model = create_backbone(name, input_size=SMALL)
    assert model.info.input_size == SMALL and model.num_classes == 1000
    fixed_size = {VIT: {"image_size": SMALL}, TIMM_VIT: {"img_size": SMALL}}.get(name, {})
    torch.manual_seed(0)  # the same init: the library's own model, built for the same size, has the same weights
    reference = library_model(name, **fixed_size).eval()
    final = [m for m in reference.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # torchvision's ViT starts with a zero head: give both the same non-zero one
        final.weight.normal_(0, 0.1)
        model.head.weight.copy_(final.weight.reshape(model.head.weight.shape))
    model.eval()
    x = images()
    with torch.no_grad():
        features, out = model.features(x), model(x)
        expected = reference((x - model.mean) / model.std)
    assert features.shape == (2, model.feature_dim) and features.std() > 0 and out.std() > 0
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model.head(features), out)
    model.replace_head(4)  # a new task's head, as the methods do
    one_training_step(model)


def test_a_pretrained_torchvision_vit_refuses_another_input_size(caches, no_network):
    with pytest.raises(ValueError) as info:
        create_backbone(VIT, weights="imagenet", input_size=64)  # before any file is looked up or model built
    message = str(info.value)
    assert "takes 224x224 input only" in message and "64" in message and "\n" not in message
    assert not (caches / "torch").exists()


# --------------------------------------------------------------------------- weights from the real caches, offline


def test_timm_weights_load_from_the_hugging_face_cache(caches, no_network):
    spec = TIMM.removeprefix("timm:")
    torch.manual_seed(1234)
    reference = timm.create_model(spec, pretrained=False)
    state = reference.state_dict()
    path = put_in_hf_cache(caches, timm.models.get_pretrained_cfg(spec).hf_hub_id, "model.safetensors", state)
    assert weights_path(TIMM) == path and download_weights(TIMM) == path  # cached: nothing fetched
    assert weights_host(TIMM) == "huggingface.co"

    torch.manual_seed(0)  # another seed: equal tensors can only come from the file
    model = create_backbone(TIMM, weights="imagenet", input_size=SMALL)
    body = model.body.state_dict()
    for key, value in state.items():
        if key in body:
            assert torch.equal(body[key], value), key
    assert torch.equal(model.head.weight, state["classifier.weight"])
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), reference.eval()((x - model.mean) / model.std))


def test_torchvision_weights_load_from_the_torch_hub_cache(caches, no_network):
    path = torch_hub_path(RESNET18)
    assert path == caches / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    torch.manual_seed(1234)
    state = torchvision.models.resnet18(weights=None).state_dict()
    put_in_torch_hub(path, state)
    torch.manual_seed(0)
    model = create_backbone(RESNET18, weights="imagenet", input_size=SMALL)
    loaded = {**{k: v for k, v in model.body.state_dict().items()}, "fc.weight": model.head.weight,
              "fc.bias": model.head.bias}
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


@pytest.mark.parametrize("name, where", [(TIMM, "hf"), (RESNET18, "resnet18-f37072fd.pth")])
def test_missing_weights_are_one_line_naming_prepare_and_the_cache(name, where, caches, no_network):
    with pytest.raises(WeightsMissing) as info:
        create_backbone(name, weights="imagenet", input_size=SMALL)
    message = str(info.value)
    assert f"reprogbench prepare --weights {name}" in message and "\n" not in message
    assert where in message and ("HF_HOME" in message or "TORCH_HOME" in message)
    assert not (caches / "torch").exists() and not (caches / "hf").exists()  # nothing fetched, nothing created


@pytest.mark.parametrize("name, says", [
    ("timm:mobilenetv3_small_050.no_such_tag", "timm.list_pretrained('mobilenetv3_small_050*')"),
    ("timm:mobilenetv3_small_050", "names no pretrained tag"),
    ("torchvision:resnet18.IMAGENET1K_V9", "resnet18 has IMAGENET1K_V1"),
    ("torchvision:resnet18.DEFAULT", "DEFAULT changes meaning"),
    ("torchvision:resnet19.IMAGENET1K_V1", "list_models"),
])
def test_unknown_names_are_one_line_saying_how_to_list(name, says):
    with pytest.raises(UnknownName) as info:
        create_backbone(name)
    assert says in str(info.value) and "\n" not in str(info.value)
    assert not known_backbone(name)


# --------------------------------------------------------------------------- short names are aliases


def test_a_short_name_is_its_library_name_under_another_name(caches, no_network):
    assert alias_of("resnet18") == RESNET18 and alias_of("resnet50v2") == "timm:resnetv2_50.a1h_in1k"
    assert alias_of("smallcnn") is None and alias_of(RESNET18) is None
    for short in ("resnet18", "resnet50v2", "vgg19"):
        full = alias_of(short)
        assert dataclasses.replace(backbone_info(full), name=short) == backbone_info(short)
        assert weights_file(short).source() == weights_file(full).source()
        assert weights_file(short).name == short  # messages name what the grid says
    assert torch_hub_path("resnet18") == torch_hub_path(RESNET18)
    # ILM-VP's and AutoVP's ResNet-50 is torchvision's second set of weights, not the first nor the V2 architecture
    assert alias_of("resnet50_imagenet1k_v2") == "torchvision:resnet50.IMAGENET1K_V2" != alias_of("resnet50")
    assert (weights_file("resnet50_imagenet1k_v2").source()
            == torchvision.models.ResNet50_Weights.IMAGENET1K_V2.url != weights_file("resnet50").source())

    put_in_torch_hub(torch_hub_path(RESNET18), torchvision.models.resnet18(weights=None).state_dict())
    torch.manual_seed(0)
    short = create_backbone("resnet18", weights="imagenet", input_size=SMALL).eval()
    torch.manual_seed(0)
    full = create_backbone(RESNET18, weights="imagenet", input_size=SMALL).eval()
    assert short.info.name == "resnet18" and full.info.name == RESNET18
    short_state, full_state = short.state_dict(), full.state_dict()
    assert short_state.keys() == full_state.keys()
    assert all(torch.equal(short_state[k], full_state[k]) for k in short_state)
    with torch.no_grad():
        assert torch.equal(short(images()), full(images()))


# --------------------------------------------------------------------------- prepare, grids and ls, end to end

LIBRARY_GRID = f"""
name: libraries
originals:
  - {{backbone: "{TIMM}", weights: imagenet, optional: true, tasks: [digits]}}
  - {{backbone: "torchvision:resnet50.IMAGENET1K_V2", weights: imagenet, optional: true, tasks: [digits]}}
tasks: [digits]
methods: [{{name: linear_probe}}]
"""


def test_a_grid_of_library_names_is_unprepared_offline_and_prepare_fetches_and_checks(tmp_path, caches, no_network,
                                                                                     monkeypatch, capsys):
    import huggingface_hub

    import launch.prepare
    from bench.grid import load_grid
    from launch.cli import main
    from launch.preflight import weights_intact

    grid_file = tmp_path / "libraries.yaml"
    grid_file.write_text(LIBRARY_GRID)
    grid = load_grid(grid_file)
    assert grid.cells == [] and len(grid.unprepared) == 2
    reasons = " | ".join(c.skip_reason for c in grid.unprepared)
    assert f"not prepared: imagenet weights for {TIMM}" in reasons
    assert "imagenet weights for torchvision:resnet50.IMAGENET1K_V2" in reasons

    fetched = []

    def hub_download(repo_id, filename, *, cache_dir):  # what huggingface_hub does, without the network
        fetched.append(repo_id)
        return str(put_in_hf_cache(caches, repo_id, filename, {"w": torch.arange(3.0)}))

    def url_download(url, dst, hash_prefix=None, progress=True):
        fetched.append((url, hash_prefix))
        torch.save({"w": torch.zeros(1)}, dst)  # cannot match the published sha256 prefix: the check must say so

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", url_download)
    monkeypatch.setattr(launch.prepare, "unreachable", lambda host: None)  # as if online
    assert main(["prepare", str(grid_file)]) == 2
    out = capsys.readouterr().out
    rows = {line.split()[1]: line.split(None, 3)[2:] for line in out.splitlines()[2:]}
    assert rows[TIMM][0] == "fetched" and rows[TIMM][1].endswith("(sha256 matches)")
    resnet50 = rows["torchvision:resnet50.IMAGENET1K_V2"]
    assert resnet50[0] == "missing" and resnet50[1].startswith("sha256 mismatch (published 11ad3fa6")
    assert fetched == ["timm/mobilenetv3_small_050.lamb_in1k",
                       ("https://download.pytorch.org/models/resnet50-11ad3fa6.pth", "11ad3fa6")]
    assert weights_intact(TIMM) and not weights_intact("torchvision:resnet50.IMAGENET1K_V2")  # run refuses it
    weights_path("torchvision:resnet50.IMAGENET1K_V2").unlink()  # as the mismatch message says to
    assert [c.backbone for c in load_grid(grid_file).cells] == [TIMM]  # prepared: its cell runs here now

    assert main(["prepare", "--weights", TIMM]) == 0  # by name: present, checked again
    assert "present" in capsys.readouterr().out
    assert main(["prepare", "--weights", "timm:resnet18.no_such_tag"]) == 2
    assert "timm.list_pretrained" in capsys.readouterr().err


def test_ls_backbones_lists_short_names_and_every_family(capsys):
    from launch.cli import main

    assert main(["ls", "--backbones"]) == 0
    out = capsys.readouterr().out
    assert "resnet18" in out and RESNET18 in out and "smallcnn" in out
    for prefix, example in (("timm:", "timm:resnet18.a1_in1k"), ("torchvision:", "torchvision:resnet50.IMAGENET1K_V2")):
        assert prefix in out and example in out
    assert main(["ls"]) == 2 and "--backbones" in capsys.readouterr().err


class NotATensor:
    """A pickled object of any class: unpickling it could run code."""


def test_torchvision_weights_load_tensors_only(caches, no_network):
    """torchvision's builders unpickle with weights_only=False; here a file holding anything but tensors is refused."""
    state = torchvision.models.resnet18(weights=None).state_dict()
    put_in_torch_hub(torch_hub_path(RESNET18), {**state, "extra": NotATensor()})
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        create_backbone(RESNET18, weights="imagenet", input_size=SMALL)
