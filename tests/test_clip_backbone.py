"""`clip:ARCH/TAG` backbones and the `semantic` label mapping, offline, on a tiny open_clip model.

The tiny model is registered through open_clip's own config mechanism (`add_model_config` with a JSON file, and a
pretrained tag in its table), so open_clip's real build, load and zero-shot code runs; its random weights are laid
out as the Hugging Face hub file open_clip would download, in the real cache layout, and loaded through
`ClipWeightsFile`.
"""
from __future__ import annotations

import json

import open_clip
import pytest
import torch
import torch.nn.functional as F
from fixtures_grids import load
from fixtures_weights import put_in_hf_cache
from open_clip import IMAGENET_CLASSNAMES, SIMPLE_IMAGENET_TEMPLATES
from open_clip.transformer import QuickGELU

from bench.data import DatasetInfo
from bench.methods import METHODS
from bench.methods.ar import Reprogrammed
from bench.models import WeightsMissing, backbone_info, create_backbone
from bench.models.checksums import WeightsCorrupt
from bench.models.clip_heads import HEADS_DIR, TextTower
from bench.models.registry import FAMILIES, known_backbone
from bench.models.weights import WeightsFile

ARCH, TAG = "reprogbench-test-tiny", "random"
NAME = f"clip:{ARCH}/{TAG}"
REPO = "reprogbench/test-tiny-clip"
TINY = {"embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
        # a short context and a narrow text tower: its 1000 x 7 ImageNet prompts encode in seconds on a test CPU
        "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}
# distinct from open_clip's defaults, so a test can tell they were read from the tag's config
TINY_CFG = {"hf_hub": f"{REPO}/", "mean": (0.1, 0.2, 0.3), "std": (0.4, 0.5, 0.6), "quick_gelu": True}
TASK = DatasetInfo("pets", 3, 3, 16, "made up for a test", class_names=("cat", "dog", "goldfish"))


@pytest.fixture(scope="module", autouse=True)
def tiny_clip(tmp_path_factory):
    config = tmp_path_factory.mktemp("open_clip_configs") / f"{ARCH}.json"
    config.write_text(json.dumps(TINY))
    open_clip.add_model_config(config)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(open_clip.pretrained._PRETRAINED, ARCH, {TAG: TINY_CFG})
        yield


@pytest.fixture(scope="module")
def saved_state():
    """The weights file's content: a randomly initialised tiny model, as `torch.save`d state."""
    torch.manual_seed(1234)
    return open_clip.create_model(ARCH, force_quick_gelu=True).state_dict()


@pytest.fixture(scope="module")
def weights_home(tmp_path_factory, saved_state):
    """One weights folder for the module: its ImageNet head (1000 classes x 7 prompts) is encoded once, by the
    first test that builds the backbone, and read from its cache by the others, as cells share it."""
    home = tmp_path_factory.mktemp("weights")
    path = put_in_hf_cache(home, REPO, "open_clip_model.safetensors", saved_state)
    return home, path


@pytest.fixture
def weights_file(weights_home, caches, monkeypatch):
    home, path = weights_home
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    return path


@pytest.fixture
def own_weights_file(caches, saved_state):
    return put_in_hf_cache(caches, REPO, "open_clip_model.safetensors", saved_state)


def reference_model(path):
    """open_clip's own model from the same file, built without any code of ours."""
    return open_clip.create_model(ARCH, pretrained=str(path), force_quick_gelu=True).eval()


def images(n: int = 4, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


# --------------------------------------------------------------------------- names and configs


def test_info_is_read_from_open_clips_configs():
    info = backbone_info(NAME)
    assert (info.input_size, info.mean, info.std) == (32, TINY_CFG["mean"], TINY_CFG["std"])
    assert info.num_classes == 1000 and info.weights == ("imagenet",) and info.text_heads
    for arch, tag in [("ViT-B-32", "openai"), ("RN50", "openai"), ("ViT-B-16", "laion2b_s34b_b88k")]:
        real = backbone_info(f"clip:{arch}/{tag}")  # resolved without weights on disk and without the network
        cfg = open_clip.get_pretrained_cfg(arch, tag)
        assert (real.mean, real.std) == (tuple(cfg["mean"]), tuple(cfg["std"]))
        assert real.input_size == open_clip.get_model_config(arch)["vision_cfg"]["image_size"] == 224
    assert not backbone_info("smallcnn").text_heads


@pytest.mark.parametrize("name, says", [("clip:ViT-B-32", "clip:ARCH/TAG"), ("clip:NoSuchArch/openai", "architecture"),
                                        ("clip:ViT-B-32/nope", "its tags: openai")])
def test_unknown_names_are_refused_in_one_line(name, says):
    assert not known_backbone(name)
    with pytest.raises(Exception, match=says) as info:
        backbone_info(name)
    assert "\n" not in str(info.value)


def test_missing_weights_name_the_prepare_command(caches, no_network):
    assert FAMILIES.get("clip").weights(f"{ARCH}/{TAG}").local_path() is None
    with pytest.raises(WeightsMissing) as info:
        create_backbone(NAME, weights="imagenet")
    message = str(info.value)
    assert f"reprogbench prepare --weights {NAME}" in message and REPO in message and "\n" not in message


# --------------------------------------------------------------------------- the backbone: CLIP's zero-shot classifier


def test_zero_shot_logits_are_open_clips(weights_file, saved_state, no_network):
    backbone = create_backbone(NAME, weights="imagenet").eval()
    ref = reference_model(weights_file)
    # each class's row depends on its own prompts only: open_clip's classifier of the first 40 classes checks
    # the first 40 logits without encoding all 7,000 prompts a second time
    classes = IMAGENET_CLASSNAMES[:40]
    classifier = open_clip.build_zero_shot_classifier(ref, open_clip.get_tokenizer(ARCH), classes,
                                                      SIMPLE_IMAGENET_TEMPLATES)
    x = images()
    mean, std = torch.tensor(TINY_CFG["mean"]).view(1, 3, 1, 1), torch.tensor(TINY_CFG["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        embedding = ref.encode_image((x - mean) / std, normalize=True)
        expected = ref.logit_scale.exp() * embedding @ classifier
        out, features = backbone(x), backbone.features(x)
    torch.testing.assert_close(features, embedding, rtol=0, atol=1e-5)
    torch.testing.assert_close(out[:, :len(classes)], expected, rtol=0, atol=1e-5)
    assert out.shape == (4, 1000) and out.std() > 0
    # the file's weights, not a fresh init; QuickGELU as the tag was trained with
    assert torch.equal(backbone.body.visual.conv1.weight, saved_state["visual.conv1.weight"])
    assert isinstance(backbone.body.visual.transformer.resblocks[0].mlp.gelu, QuickGELU)


def test_the_text_tower_is_no_part_of_the_graph(weights_file, no_network):
    backbone = create_backbone(NAME, weights="imagenet")
    assert {k.split(".")[0] for k in backbone.state_dict()} == {"body", "head"}
    text_params = {id(p) for p in backbone.text.model.parameters()}
    assert text_params and not text_params & {id(p) for p in backbone.parameters()}
    assert backbone.feature_dim == TINY["embed_dim"]


def test_the_imagenet_head_is_cached_beside_the_weights_and_read_back(weights_file, monkeypatch, no_network):
    first = create_backbone(NAME, weights="imagenet")
    (cached,) = (weights_file.parent / HEADS_DIR).glob("*-1000-*.pt")
    assert f"{ARCH}-{TAG}-simple-1000-" in cached.name

    def refuse(*args, **kwargs):
        raise AssertionError("encoded the prompts again")

    monkeypatch.setattr(TextTower, "embeddings", refuse)
    again = create_backbone(NAME, weights="imagenet")
    assert torch.equal(again.head.weight, first.head.weight)


def test_a_text_head_for_new_classes_is_open_clips_classifier(weights_file, no_network):
    backbone = create_backbone(NAME, weights="imagenet")
    ref = reference_model(weights_file)
    classifier = open_clip.build_zero_shot_classifier(ref, open_clip.get_tokenizer(ARCH), TASK.class_names,
                                                      SIMPLE_IMAGENET_TEMPLATES)
    head = backbone.text_head(TASK.class_names)
    torch.testing.assert_close(head.weight, ref.logit_scale.exp().detach() * classifier.T, rtol=0, atol=1e-5)
    assert head.bias is None


def test_random_init_builds_no_text_head():
    torch.manual_seed(0)
    backbone = create_backbone(NAME)
    assert backbone.head.out_features == 1000 and backbone.text.cache_dir is None
    assert create_backbone(NAME, num_classes=3).head.out_features == 3


# --------------------------------------------------------------------------- one training step of each method


def step(model, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """One Adam step on what requires grad; -> every tensor of the model (parameters and buffers) before it."""
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    return before


def changed(model, before: dict[str, torch.Tensor]) -> set[str]:
    return {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}


def build(method: str, backbone, **params):
    m = METHODS.get(method)
    return m.build(backbone, TASK, m.Params(**params), 0)


@pytest.mark.parametrize("method, params, trains", [
    ("linear_probe", {}, {"learned.weight", "learned.bias"}),
    ("ar", {"program": "pad"}, {"learned.W"}),
    ("ar", {"program": "full", "label_map": "learned"}, {"learned.program.W", "learned.label_map.weight",
                                                         "learned.label_map.bias"}),
    ("ar", {"program": "pad", "label_map": "semantic"}, {"learned.W"}),
])
def test_a_step_changes_only_what_the_method_learns(weights_file, no_network, method, params, trains):
    model = build(method, create_backbone(NAME, weights="imagenet"), **params)
    before = step(model, images(6, 16), torch.arange(6) % 3)
    moved = changed(model, before)
    assert {k for k in moved if k.startswith("learned.")} == trains
    assert not any(k.startswith("backbone.") for k in moved)  # frozen means frozen
    if params.get("label_map") == "semantic":
        assert not any(k.startswith("label_map.") for k in moved)  # the text head is text, not trained


def test_semantic_reads_the_embedding_through_the_tasks_text_head(weights_file, no_network):
    backbone = create_backbone(NAME, weights="imagenet")
    model = build("ar", backbone, program="pad", label_map="semantic")
    assert isinstance(model, Reprogrammed) and model.reads_embedding
    x = images(2, 16)
    with torch.no_grad():
        expected = backbone.text_head(TASK.class_names)(backbone.features(model.encode(x)))
        torch.testing.assert_close(model(x), expected)
    assert METHODS.get("ar").frozen_output({"label_map": "semantic"}) != \
        METHODS.get("ar").frozen_output({"label_map": "first_k"})  # never packed into one frozen pass


def test_finetune_trains_the_image_tower_under_a_new_head(weights_file, no_network):
    backbone = create_backbone(NAME, weights="imagenet")
    text_before = {k: v.clone() for k, v in backbone.text.model.state_dict().items()}
    model = build("finetune", backbone)
    before = step(model, images(6, 16), torch.arange(6) % 3)
    moved = changed(model, before)
    assert {"learned.head.weight", "learned.head.bias", "learned.body.visual.conv1.weight"} <= moved
    assert model.learned.head.out_features == 3
    assert all(torch.equal(v, text_before[k]) for k, v in backbone.text.model.state_dict().items())


# --------------------------------------------------------------------------- semantic where it cannot apply


def test_semantic_is_skipped_with_its_reason_at_grid_expansion(tmp_path):
    grid = load(tmp_path, {"originals": [{"backbone": "smallcnn", "trained_on": "digits"},
                                         {"backbone": NAME, "weights": "imagenet"}],
                           "tasks": ["digits", "gtsrb"],
                           "methods": [{"name": "ar", "label_map": ["first_k", "semantic"]},
                                       {"name": "blackbox", "label_map": "semantic"}]})
    reasons = {(c.spec["backbone"]["name"], c.method, c.task): c.skip_reason for c in grid.skipped}
    assert "smallcnn does not" in reasons[("smallcnn", "ar", "digits")]
    assert "clip:ARCH/TAG" in reasons[("smallcnn", "ar", "digits")]
    # GTSRB's classes have no names in torchvision or its files: known before any file is read
    assert reasons[(NAME, "ar", "gtsrb")] == "label_map: semantic reads the task's class names; gtsrb has none"
    assert "output probabilities only" in reasons[(NAME, "blackbox", "digits")]
    ran = {(c.spec["backbone"]["name"], c.spec["method"].get("label_map"), c.task)
           for c in grid.cells if c.method == "ar"}
    assert {("smallcnn", "first_k", "digits"), (NAME, "first_k", "digits"), (NAME, "semantic", "digits")} <= ran
    assert (NAME, "semantic", "gtsrb") not in ran


def test_semantic_with_a_task_without_class_names_is_refused_at_build(weights_file, no_network):
    nameless = DatasetInfo("t", 3, 3, 16, "made up for a test")
    with pytest.raises(ValueError, match="dataset t has none"):
        METHODS.get("ar").build(create_backbone(NAME, weights="imagenet"), nameless,
                                METHODS.get("ar").Params(label_map="semantic"), 0)


# --------------------------------------------------------------------------- weights: prepare fetches, load checks


def test_download_fetches_the_hub_file_open_clip_would_and_caches_the_head(caches, saved_state, monkeypatch):
    fetched = []

    def fake_hub(repo_id, filename, **kwargs):  # what huggingface_hub does: the file into the cache layout
        fetched.append((repo_id, filename))
        if filename != "open_clip_model.safetensors":
            raise FileNotFoundError(filename)
        return str(put_in_hf_cache(caches, repo_id, filename, saved_state))

    monkeypatch.setattr(open_clip.pretrained, "hf_hub_download", fake_hub)
    few = tuple(IMAGENET_CLASSNAMES[:10])  # the head of 10 ImageNet classes: 70 prompts, not 7,000, on a test CPU
    monkeypatch.setattr("bench.models.clip_family.imagenet_class_names", lambda: few)
    weights = FAMILIES.get("clip").weights(f"{ARCH}/{TAG}")
    assert isinstance(weights, WeightsFile) and REPO in weights.source() and weights.name == NAME
    path = weights.download()
    assert fetched == [(REPO, "open_clip_model.safetensors")] and weights.local_path() == path
    assert list((path.parent / HEADS_DIR).glob(f"{ARCH}-{TAG}-simple-10-*.pt"))
    assert weights.download() == path and len(fetched) == 1  # already there: nothing fetched


def test_a_corrupt_weights_file_is_refused_with_the_fix(own_weights_file, no_network):
    blob = own_weights_file.resolve()
    blob.write_bytes(blob.read_bytes()[:-10])
    with pytest.raises(WeightsCorrupt, match=f"reprogbench prepare --weights {NAME}"):
        create_backbone(NAME, weights="imagenet")


def test_a_clip_cell_runs_through_the_trainer(weights_file, tmp_path, no_network):
    from bench.train import run_cell

    grid = load(tmp_path, {"originals": [{"backbone": NAME, "weights": "imagenet", "task_split": {"max_train": 60}}],
                           "tasks": ["digits"], "hparams": {"batch_size": 32, "epochs": 1},
                           "methods": [{"name": "ar", "program": "pad", "label_map": "frequency"},
                                       {"name": "linear_probe"}]})
    for cell in grid.cells:
        record = run_cell(cell, tmp_path / cell.cell_id)
        assert record.done, record.error
        assert 0.0 <= record.metrics.test_acc <= 100.0  # percent
