"""The thesis's Table 5.1 backbones (bench.models.thesis_nets; short names, aliases of library names in
bench.models.aliases): the mapping, the body/head split, weights offline."""
from __future__ import annotations

import huggingface_hub
import pytest
import timm
import torch
import torchvision
from fixtures_weights import put_in_hf_cache, put_in_torch_hub, torch_hub_path

from bench.models import WeightsMissing, backbone_info, create_backbone, list_backbones
from bench.models.aliases import SHORT_NAMES
from bench.models.backbone import IMAGENET_MEAN, IMAGENET_STD
from bench.models.thesis_nets import THESIS_BACKBONES
from bench.models.weights import (
    download_weights,
    weights_file,
    weights_names,
    weights_path,
    weights_present,
    weights_source,
)
from bench.models.weights_caches import HF_FILES, hf_hub_cache
from bench.registry import UnknownName

KERAS_NAMES = ["ResNet50V2", "ResNet101V2", "ResNet152V2", "MobileNet", "MobileNetV2", "NASNetMobile", "VGG16", "VGG19"]
THESIS = [name for name, _ in THESIS_BACKBONES.values() if name is not None]
FEATURE_DIM = {"resnet50v2": 2048, "resnet101v2": 2048, "mobilenet_v1": 1024, "mobilenet_v2": 1280, "vgg16": 4096,
               "vgg19": 4096}
SMALL = 32  # as in test_models: the 224px nets pool adaptively; 1x1 after the last stage
INCEPTION_MEAN = INCEPTION_STD = (0.5, 0.5, 0.5)  # x in [0, 1] -> [-1, 1]: Keras's "tf" mode, and timm's for these
# short name -> timm model.tag / torchvision (model, weights) it is an alias of
TIMM_MODELS = {n: full.removeprefix("timm:") for n, full in SHORT_NAMES.items() if full.startswith("timm:")}
TORCHVISION_MODELS = {n: tuple(full.removeprefix("torchvision:").split(".")) for n, full in SHORT_NAMES.items()
                      if full.startswith("torchvision:")}
TORCHVISION_HEADS = {"mobilenet_v2": "classifier.1", "vgg16": "classifier.6", "vgg19": "classifier.6"}


def torchvision_weights(name: str):
    model, tag = TORCHVISION_MODELS[name]
    return torchvision.models.get_model_weights(model)[tag]


def original_model(name: str) -> torch.nn.Module:
    """The unsplit classifier a thesis backbone is made from, random init."""
    if name in TIMM_MODELS:
        return timm.create_model(TIMM_MODELS[name], pretrained=False)
    return getattr(torchvision.models, TORCHVISION_MODELS[name][0])(weights=None)


def images(n: int = 2, size: int = SMALL) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


# --------------------------------------------------------------------------- the mapping


def test_the_table_covers_the_eight_keras_models():
    assert list(THESIS_BACKBONES) == KERAS_NAMES
    registered = set(list_backbones())
    for keras, (name, note) in THESIS_BACKBONES.items():
        assert note.strip(), keras
        if name is not None:
            assert name in registered and backbone_info(name).weights == ("imagenet",), keras
            assert name in weights_names() and backbone_info(name).num_classes == 1000
    # no silent substitutes for the two PyTorch lacks
    assert THESIS_BACKBONES["ResNet152V2"][0] is None and THESIS_BACKBONES["NASNetMobile"][0] is None
    assert len(set(THESIS)) == len(THESIS) == 6
    assert THESIS_BACKBONES["MobileNetV2"][0] == "mobilenet_v2" and THESIS_BACKBONES["VGG16"][0] == "vgg16"


@pytest.mark.parametrize("name", sorted(TIMM_MODELS))
def test_timm_backbones_use_their_pretrained_cfg(name):
    tag, info = TIMM_MODELS[name], backbone_info(name)
    assert tag in timm.list_pretrained() and tag.endswith("in1k")
    cfg = timm.models.get_pretrained_cfg(tag)
    assert cfg.hf_hub_id == weights_file(name).repo == f"timm/{tag}" and cfg.num_classes == 1000
    assert (info.mean, info.std) == (INCEPTION_MEAN, INCEPTION_STD) == (tuple(cfg.mean), tuple(cfg.std))
    assert (3, info.input_size, info.input_size) == tuple(cfg.input_size) == (3, 224, 224)
    assert backbone_info(f"timm:{tag}") == info.__class__(**{**vars(info), "name": f"timm:{tag}"})


@pytest.mark.parametrize("name", [n for n in THESIS if n not in TIMM_MODELS])
def test_torchvision_backbones_use_their_weights_transforms(name):
    info = backbone_info(name)
    transforms = torchvision_weights(name).transforms()
    assert (info.mean, info.std) == (IMAGENET_MEAN, IMAGENET_STD)
    assert (tuple(transforms.mean), tuple(transforms.std)) == (IMAGENET_MEAN, IMAGENET_STD)
    assert transforms.crop_size == [info.input_size]


# --------------------------------------------------------------------------- body + head == the original


def head_key(name: str) -> str:
    if name in TIMM_MODELS:
        return timm.models.get_pretrained_cfg(TIMM_MODELS[name]).classifier  # "head.fc" (a 1x1 conv), "classifier"
    return TORCHVISION_HEADS[name]


def unsplit(model, name: str) -> torch.nn.Module:
    """The original classifier holding `model`'s weights: body keys are its keys, minus the head's (strict load)."""
    with torch.device("meta"):  # no second random init (VGG's takes seconds)
        original = original_model(name)
    original = original.to_empty(device="cpu")
    key = head_key(name)
    state = dict(model.body.state_dict())
    state[f"{key}.weight"] = model.head.weight.reshape(original.get_submodule(key).weight.shape)
    state[f"{key}.bias"] = model.head.bias
    original.load_state_dict(state, strict=True)
    return original.eval()


@pytest.mark.parametrize("name", THESIS)
def test_body_and_head_are_the_original_model(name):
    torch.manual_seed(0)
    model = create_backbone(name, input_size=SMALL).eval()
    assert model.info.input_size == SMALL and model.num_classes == 1000
    assert model.feature_dim == FEATURE_DIM[name]
    original = unsplit(model, name)
    x = images()
    with torch.no_grad():
        h = model.features(x)
        out = model(x)
        expected = original((x - model.mean) / model.std)
    assert h.shape == (2, FEATURE_DIM[name]) and out.shape == (2, 1000)
    assert torch.isfinite(out).all() and out.std() > 0
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model.head(h), out)
    if name in TIMM_MODELS:  # the head was rebuilt (ResNetV2: from a 1x1 conv): compare with an independent build
        torch.manual_seed(0)
        classifier = original_model(name).get_classifier()
        assert torch.equal(model.head.weight, classifier.weight.flatten(1))
        assert torch.equal(model.head.bias, classifier.bias)


# --------------------------------------------------------------------------- weights, offline


@pytest.mark.parametrize("name", THESIS)
def test_missing_weights_name_the_prepare_command(name, caches, no_network):
    assert not weights_present(name)
    with pytest.raises(WeightsMissing) as info:
        if name in TIMM_MODELS:
            create_backbone(name, weights="imagenet", input_size=SMALL)
        else:  # test_models covers the torchvision factory's path
            weights_path(name)
    message = str(info.value)
    assert f"reprogbench prepare --weights {name}" in message and "\n" not in message
    assert str(caches) in message  # where it looked
    with pytest.raises(WeightsMissing):
        weights_path(name)
    assert not (caches / "torch").exists() and not (caches / "hf").exists()  # nothing downloaded, nothing created


@pytest.mark.parametrize("name, filename", [("mobilenet_v1", "pytorch_model.bin"),
                                            ("resnet50v2", "model.safetensors")])
def test_timm_weights_are_read_from_the_local_hf_cache(name, filename, caches, no_network):
    tag = TIMM_MODELS[name]
    torch.manual_seed(1234)
    reference = timm.create_model(tag, pretrained=False)
    state = reference.state_dict()
    path = put_in_hf_cache(caches, f"timm/{tag}", filename, state)
    assert hf_hub_cache() == caches / "hf" / "hub"
    assert weights_path(name) == path and weights_present(name)
    assert download_weights(name) == path  # already cached: no download (the network is refused)

    torch.manual_seed(0)  # a different seed: equal tensors can only come from the file
    model = create_backbone(name, weights="imagenet", input_size=SMALL).eval()
    body = model.body.state_dict()
    for key, value in state.items():
        if key in body:
            assert torch.equal(body[key], value), key
    classifier = head_key(name)
    assert torch.equal(model.head.weight, state[f"{classifier}.weight"].flatten(1))
    assert torch.equal(model.head.bias, state[f"{classifier}.bias"])
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference.eval()((x - model.mean) / model.std), rtol=1e-4, atol=1e-4)

    new_task = create_backbone(name, weights="imagenet", num_classes=4, input_size=SMALL)
    assert new_task.num_classes == 4 and new_task.feature_dim == FEATURE_DIM[name]


def test_vgg19_weights_are_read_from_the_local_torch_hub_cache(caches, no_network):
    path = torch_hub_path("vgg19")
    assert path == caches / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"  # torchvision's file name
    with torch.device("meta"):
        shapes = torchvision.models.vgg19(weights=None).state_dict()
    reference = {k: torch.full(v.shape, (i + 1) / 100) for i, (k, v) in enumerate(shapes.items())}  # one value a tensor
    put_in_torch_hub(path, reference)
    assert weights_path("vgg19") == path and download_weights("vgg19") == path

    model = create_backbone("vgg19", weights="imagenet", input_size=SMALL)
    assert torch.equal(model.body.features[0].weight, reference["features.0.weight"])
    assert torch.equal(model.body.classifier[3].weight, reference["classifier.3.weight"])
    assert torch.equal(model.head.weight, reference["classifier.6.weight"])
    assert isinstance(model.body.classifier[6], torch.nn.Identity)


def test_download_weights_fetches_into_the_caches_the_loaders_read(caches, monkeypatch):
    fetched = []

    def fake_hf_download(repo_id, filename, *, cache_dir):
        fetched.append((repo_id, filename, cache_dir))
        return str(put_in_hf_cache(caches, repo_id, filename, {"w": torch.zeros(1)}))

    def fake_url_download(url, dst, hash_prefix=None, progress=True):
        fetched.append((url, dst, hash_prefix))
        torch.save({}, dst)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hf_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_url_download)
    path = download_weights("mobilenet_v1")
    assert fetched == [(f"timm/{TIMM_MODELS['mobilenet_v1']}", "model.safetensors", caches / "hf" / "hub")]
    assert weights_path("mobilenet_v1") == path and path.name == "model.safetensors"

    fetched.clear()
    path = download_weights("vgg19")
    url = torchvision_weights("vgg19").url
    # torch.hub checks the sha256 prefix torchvision publishes in the file name
    assert fetched == [(url, str(path), "dcbb9e9d")] and weights_source("vgg19") == url
    assert weights_path("vgg19") == path
    assert weights_source("resnet50v2") == "Hugging Face hub timm/resnetv2_50.a1h_in1k"


def test_hf_cache_follows_the_environment_at_call_time(tmp_path, monkeypatch):
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hf_hub_cache() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert hf_hub_cache() == tmp_path / "cache"


def test_every_imagenet_backbone_has_one_weights_interface():
    imagenet = {n for n in list_backbones() if backbone_info(n).weights == ("imagenet",)}
    assert set(weights_names()) == imagenet and set(THESIS) <= imagenet
    with pytest.raises(UnknownName, match=r"no downloadable weights for 'smallcnn'; known: .*resnet18.*resnet50v2"):
        weights_path("smallcnn")


def test_download_falls_back_to_the_pickle_only_when_the_repo_lacks_safetensors(caches, monkeypatch):
    from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

    asked = []

    def repo_without_safetensors(repo_id, filename, *, cache_dir):
        asked.append(filename)
        if filename == "model.safetensors":
            raise EntryNotFoundError(f"{repo_id} has no {filename}")
        return str(put_in_hf_cache(caches, repo_id, filename, {"w": torch.zeros(1)}))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", repo_without_safetensors)
    assert download_weights("resnet101v2").name == "pytorch_model.bin" and asked == list(HF_FILES)

    def offline(repo_id, filename, *, cache_dir):
        raise LocalEntryNotFoundError("offline")  # no network is not "the repo lacks the file"

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(LocalEntryNotFoundError):
        download_weights("resnet50v2")
