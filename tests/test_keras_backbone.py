"""The `keras:` backbones: Keras applications on Keras's torch backend behind the ordinary `Backbone` interface.

Each model here is built by Keras itself with random weights at 32 px (Keras's minimum), its weights written by
Keras (the legacy `.h5` format of Keras's ImageNet files) where Keras's cache keeps them, and loaded through the
family's WeightsFile; the wrapper must then give what Keras's own call gives on the same input: logits and input
gradients within 1e-4. MobileNet (a 1x1-conv head, tf mode) and VGG16 (caffe mode, BGR) are thesis models.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

os.environ.setdefault("KERAS_BACKEND", "torch")

from bench.data import dataset_info  # noqa: E402
from bench.methods import METHODS  # noqa: E402
from bench.models import backbone_info, create_backbone  # noqa: E402
from bench.models.backbone import WeightsMissing  # noqa: E402
from bench.models.keras_apps import KERAS_APPLICATIONS, KerasWeightsFile  # noqa: E402
from bench.models.keras_backend import MODES, import_keras, pixel_map  # noqa: E402
from bench.models.registry import FAMILIES, known_backbone  # noqa: E402
from bench.models.weights import WeightsFile  # noqa: E402

keras = import_keras()
SIZE = 32
APPS = ["MobileNet", "VGG16"]


def write_keras_cache(home, app: str, model) -> None:
    """What `get_file` leaves: the application's `.h5` in $KERAS_HOME/models, written by Keras's own writer."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    path = home / "models" / KERAS_APPLICATIONS[app].weights_file
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


def lively(model, module: str, seed: int = 0):
    """Random weights whose outputs depend on the input. With Keras's init and BatchNorm's initial statistics (0, 1)
    a deep MobileNet's input gradient is 1e-16, where any comparison passes; BatchNorm statistics taken from one
    batch of random images (momentum 0 for that one call) keep every layer's activations O(1)."""
    batch_norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in batch_norms]
    for layer in batch_norms:
        layer.momentum = 0.0
    size = model.input.shape[1]
    pixels = torch.rand(8, size, size, 3, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        model(getattr(keras.applications, module).preprocess_input(255 * pixels), training=True)
    for layer, momentum in zip(batch_norms, momenta, strict=True):
        layer.momentum = momentum
    return model


@pytest.fixture(scope="module")
def keras_home(tmp_path_factory):
    return tmp_path_factory.mktemp("keras_home")


@pytest.fixture(scope="module", params=APPS)
def pair(request, keras_home):
    """(the Keras model, as Keras builds it; our backbone loaded from its weights file)."""
    app = request.param
    keras.utils.set_random_seed(0)
    model = lively(getattr(keras.applications, app)(input_shape=(SIZE, SIZE, 3), weights=None,
                                                     classifier_activation=None), KERAS_APPLICATIONS[app].module)
    write_keras_cache(keras_home, app, model)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERAS_HOME", str(keras_home))
        backbone = create_backbone(f"keras:{app}", weights="imagenet", input_size=SIZE).freeze()
    return app, model, backbone


def keras_call(app: str, model, x01: torch.Tensor) -> torch.Tensor:
    """Keras's own way: NHWC pixels in 0..255, the application's preprocess_input, the model."""
    module = getattr(keras.applications, KERAS_APPLICATIONS[app].module)
    return model(module.preprocess_input(255 * x01.permute(0, 2, 3, 1)), training=False)


def images(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def test_logits_and_input_gradients_are_keras_own(pair):
    app, model, backbone = pair
    x_ours, x_keras = images().requires_grad_(), images().requires_grad_()
    ours, theirs = backbone(x_ours), keras_call(app, model, x_keras)
    assert ours.shape == (2, 1000) and theirs.abs().max() > 1e-3
    assert_within_1e4_of_scale(ours, theirs)
    weights = torch.randn(2, 1000, generator=torch.Generator().manual_seed(1))
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    assert x_ours.grad.abs().max() > 1e-3  # an input program learns through it
    assert_within_1e4_of_scale(x_ours.grad, x_keras.grad)


def assert_within_1e4_of_scale(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """Within 1e-4, relative to the largest value where that exceeds 1 (caffe mode feeds VGG pixels of +-128, so
    its logits are hundreds, and float32 rounds at 1e-4 of that)."""
    scale = max(1.0, float(theirs.detach().abs().max()))
    difference = float((ours - theirs).detach().abs().max())
    assert difference <= 1e-4 * scale, (difference, scale)


def test_head_is_a_linear_over_the_pooled_features(pair):
    _, model, backbone = pair
    assert isinstance(backbone.head, torch.nn.Linear) and backbone.num_classes == 1000
    features = backbone.features(images())
    assert features.shape == (2, backbone.feature_dim)
    torch.testing.assert_close(backbone.head(features), backbone(images()))


def test_a_new_task_replaces_the_head():
    backbone = create_backbone("keras:MobileNet", input_size=SIZE, num_classes=7)
    assert backbone.head.out_features == 7 and backbone(images()).shape == (2, 7)


@pytest.mark.parametrize("app", ["ResNet50V2", "VGG16", "MobileNetV2", "NASNetMobile", "InceptionV3"])
def test_preprocessing_is_read_from_keras(app):
    """The constants a Backbone applies equal the application's own preprocess_input on random pixels."""
    module = KERAS_APPLICATIONS[app].module
    pixels = np.random.default_rng(0).uniform(0, 255, (3, 5, 5, 3)).astype(np.float32)
    expected = getattr(keras.applications, module).preprocess_input(pixels.copy())
    info = backbone_info(f"keras:{app}")
    ours = ((pixels / 255 - np.array(info.mean)) / np.array(info.std))[..., list(pixel_map(module).order)]
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-4)
    assert pixel_map(module).mode == ("caffe" if app.startswith("VGG") else "tf")
    assert info.input_size == KERAS_APPLICATIONS[app].input_size


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_maps_like_keras(mode):
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    expected = keras.applications.imagenet_utils.preprocess_input(pixels.copy(), mode=mode)
    pm = pixel_map("vgg16", mode)
    np.testing.assert_allclose(((pixels / 255 - pm.mean) / pm.std)[..., list(pm.order)], expected, rtol=1e-5,
                               atol=1e-4)


def test_thesis_preprocessing_is_caffe_then_divided_by_255(pair, keras_home, monkeypatch):
    app, model, _ = pair
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    thesis = create_backbone(f"keras:{app}", weights="imagenet", input_size=SIZE, preprocessing="thesis").freeze()
    x = images()
    caffe = keras.applications.imagenet_utils.preprocess_input(255 * x.permute(0, 2, 3, 1), mode="caffe")
    torch.testing.assert_close(thesis(x), model(caffe / 255, training=False), atol=1e-4, rtol=1e-4)
    assert "preprocessing thesis" in thesis.info.description


def test_preprocessing_only_where_a_family_names_it():
    with pytest.raises(ValueError, match="has no preprocessing 'thesis'"):
        create_backbone("test_tinycnn", preprocessing="thesis")
    with pytest.raises(ValueError, match="has no preprocessing 'bgr'"):
        create_backbone("keras:MobileNet", input_size=SIZE, preprocessing="bgr")


def test_a_missing_weights_file_is_one_line_naming_prepare(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    with pytest.raises(WeightsMissing) as e:
        create_backbone("keras:VGG16", weights="imagenet")
    message = str(e.value)
    assert "\n" not in message and "reprogbench prepare --weights keras:VGG16" in message
    assert str(tmp_path / "empty" / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels.h5") in message


def test_the_family_is_registered_and_its_weights_file_meets_the_protocol(tmp_path, monkeypatch):
    family = FAMILIES.get("keras")
    assert family.preprocessings == ("thesis",) and known_backbone(family.example)
    assert not known_backbone("keras:ResNet50") and not known_backbone("keras:resnet50v2")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    weights = family.weights("ResNet152V2")
    assert isinstance(weights, WeightsFile) and weights.local_path() is None
    assert weights.cache_hint() == (f"KERAS_HOME (looked for "
                                    f"{tmp_path / 'models' / 'resnet152v2_weights_tf_dim_ordering_tf_kernels.h5'})")
    assert weights.source() == ("https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
                                "resnet152v2_weights_tf_dim_ordering_tf_kernels.h5")


class _Asked(Exception):
    pass


def what_keras_fetches(build) -> dict:
    """The `get_file` call a Keras application makes for weights="imagenet" (stopped there: nothing downloads)."""
    from keras.src.utils import file_utils

    asked = {}

    def record(fname, origin, **kwargs):
        asked.update(fname=fname, origin=origin, **kwargs)
        raise _Asked

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(file_utils, "get_file", record)
        with pytest.raises(_Asked):
            build()
    return asked


def keras_default(app: str, weights: str | None):
    """The application as Keras builds it by default (input shape None: its default_size)."""
    if app == "NASNetMobile":  # Keras refuses it on torch before building: its NASNet with NASNetMobile's arguments
        from keras.src.applications import nasnet

        return nasnet.NASNet(None, penultimate_filters=1056, num_blocks=4, stem_block_filters=32,
                             skip_reduction=False, filter_multiplier=2, default_size=224, weights=weights)
    return getattr(keras.applications, app)(weights=weights)


def check_table_entry(app: str) -> None:
    entry = KERAS_APPLICATIONS[app]
    asked = what_keras_fetches(lambda: keras_default(app, "imagenet"))
    assert (asked["fname"], asked["origin"], asked["cache_subdir"]) == (entry.weights_file, entry.origin, "models")
    assert asked.get("file_hash") == entry.weights_md5


@pytest.mark.parametrize("app", ["MobileNet", "MobileNetV2"])
def test_the_weights_table_is_what_keras_fetches(app):
    check_table_entry(app)


@pytest.mark.slow
@pytest.mark.parametrize("app", sorted(set(KERAS_APPLICATIONS) - {"MobileNet", "MobileNetV2"}))
def test_the_weights_table_is_what_keras_fetches_for_the_big_models(app):
    check_table_entry(app)
    assert keras_default(app, None).input.shape[1] == KERAS_APPLICATIONS[app].input_size  # Keras's default_size


def test_the_weights_file_loads_what_keras_wrote(pair, keras_home, monkeypatch):
    app, model, backbone = pair
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    assert KerasWeightsFile(f"keras:{app}", KERAS_APPLICATIONS[app]).local_path() is not None
    kernel = next(w for w in model.weights if w.path.endswith("kernel"))
    ours = dict(backbone.named_parameters())[f"body.model._torch_params.{kernel.path}"]
    torch.testing.assert_close(ours, torch.as_tensor(keras.ops.convert_to_numpy(kernel)))


TASK = dataset_info("digits_0to4")


@pytest.mark.parametrize("pair", ["MobileNet"], indirect=True)  # one backbone is enough for a training step
@pytest.mark.parametrize("method_name", ["linear_probe", "ar"])
def test_one_training_step_through_a_keras_backbone(method_name, pair):
    app, _, backbone = pair
    method = METHODS.get(method_name)
    torch.manual_seed(0)
    model = method.build(backbone, TASK, method.Params(), seed=0)
    frozen = {k: v.clone() for k, v in backbone.state_dict().items()}
    learned = {k: v.clone() for k, v in model.learned.state_dict().items()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    x = torch.rand(4, TASK.channels, TASK.size, TASK.size, generator=torch.Generator().manual_seed(2))
    loss = F.cross_entropy(model(x), torch.arange(4) % TASK.num_classes) + model.regularizer()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(v, learned[k]) for k, v in model.learned.state_dict().items())
    assert all(torch.equal(v, frozen[k]) for k, v in backbone.state_dict().items())  # BatchNorm statistics too


@pytest.mark.slow
def test_nasnet_mobile_on_torch_matches_keras_on_jax(tmp_path):
    """The evidence of docs/backbones-keras.md, small: the refusal bypassed, same random weights under torch and JAX
    (each in its own process), every layer within 1e-4, and input gradients that agree to float32 rounding."""
    pytest.importorskip("jax")
    from keras_crosscheck import main as crosscheck

    found = crosscheck(tmp_path, 64)
    assert found["layers"] > 700 and found["layers_over_1e-4"] == [] and found["logits_diff"] < 1e-4
    assert found["max_abs_grad"] > 0 and found["grad_relative_l2"] < 0.1  # ReLU kinks move a few elements
