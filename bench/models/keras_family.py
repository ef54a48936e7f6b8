"""`keras:<Application>`: the thesis's own Keras ImageNet models (and Elsayed et al.'s Inceptions), run by Keras 3
on its torch backend, so the trainer sees an ordinary `Backbone`.

Inputs are NCHW in [0, 1], as for every backbone. The body turns them into what Keras wants (NHWC pixels in 0..255
through the application's own `keras.applications.<module>.preprocess_input`) and runs the Keras model up to its
pooled penultimate features; the head is the application's last layer (a Dense, or MobileNet's 1x1 conv on the
pooled map) as an `nn.Linear`. `BackboneInfo.mean/std` state that preprocessing per RGB channel, read from Keras
(bench.models.keras_backend).
`preprocessing="thesis"` replaces the application's own preprocessing by the thesis code's: caffe mode, then /255.
docs/backbones-keras.md says what was checked (logits and input gradients against Keras's own call, NASNetMobile).
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from bench.models.backbone import Backbone, BackboneInfo
from bench.models.keras_apps import KERAS_APPLICATIONS, KerasApplication, KerasWeightsFile
from bench.models.keras_backend import THESIS, import_keras, pixel_map, preprocess
from bench.models.registry import BackboneFamily, Factory, register_backbone_family
from bench.models.weights import verified_weights_path
from bench.registry import UnknownName

PREFIX = "keras"


class KerasFeatures(nn.Module):
    """NCHW in [0, 1] -> Keras's own preprocessing of NHWC 0..255 pixels -> the Keras model -> (N, features).

    Keras's preprocess_input runs on the torch tensor itself: differentiable, and the same float operations as
    Keras's own call (a re-implementation rounds differently, which moves ReLU kinks and so input gradients);
    torch's train/eval flag is Keras's `training`.
    """

    def __init__(self, model: nn.Module, module: str, preprocessing: str | None):
        super().__init__()
        self.model = model
        self.module = module  # keras.applications.<module>.preprocess_input
        self.preprocessing = preprocessing  # None: the application's own

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        # Keras moves every tensor it touches to its own default device ("cuda" whenever CUDA exists); scoped to
        # the input's device, the model runs where `.to(device)` (or DDP) put it, on any rank
        with import_keras().device(str(x01.device)):
            pixels = preprocess(255 * x01.permute(0, 2, 3, 1), self.module, self.preprocessing)
            return self.model(pixels, training=self.training).reshape(len(x01), -1)


class KerasBackbone(Backbone):
    """A `Backbone` whose normalisation is Keras's (its `info.mean/std` say what that is per RGB channel)."""

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _application(spec: str) -> KerasApplication:
    if spec not in KERAS_APPLICATIONS:
        raise UnknownName(f"unknown Keras application {spec!r} in '{PREFIX}:{spec}'; known: "
                          f"{', '.join(f'{PREFIX}:{name}' for name in KERAS_APPLICATIONS)}")
    return KERAS_APPLICATIONS[spec]


def build_application(spec: str, input_size: int) -> nn.Module:
    """The Keras application with random weights, logits out (no softmax), on the torch backend."""
    with import_keras().device("cpu"):  # built on the CPU, like any torch module; the trainer moves it
        return _build(spec, (input_size, input_size, 3))


def _build(spec: str, shape: tuple[int, int, int]) -> nn.Module:
    keras = import_keras()
    if spec == "NASNetMobile":
        # NASNetMobile's own arguments, without its torch-backend refusal: the bug it guards against (average pooling
        # with asymmetric "same" padding) does not occur in this model (docs/backbones-keras.md, the evidence)
        from keras.src.applications import nasnet

        return nasnet.NASNet(shape, penultimate_filters=1056, num_blocks=4, stem_block_filters=32,
                             skip_reduction=False, filter_multiplier=2, include_top=True, weights=None,
                             input_tensor=None, pooling=None, classes=1000, default_size=224,
                             classifier_activation=None, name="nasnet_mobile")
    return getattr(keras.applications, spec)(input_shape=shape, weights=None, classifier_activation=None)


def split_head(model) -> tuple[nn.Module, nn.Linear]:
    """A Keras classifier -> (body giving pooled penultimate features, Linear head); body then head == model."""
    keras = import_keras()
    head_layer = next(layer for layer in reversed(model.layers) if layer.weights)
    kernel, bias = (torch.as_tensor(keras.ops.convert_to_numpy(w)) for w in head_layer.weights)
    if kernel.ndim == 4:  # MobileNet: a 1x1 conv on the pooled (N, 1, 1, C) map is a Linear
        if kernel.shape[:2] != (1, 1):
            raise TypeError(f"cannot turn {head_layer.name} (kernel {tuple(kernel.shape)}) into a Linear")
        kernel = kernel[0, 0]
    head = nn.Linear(*kernel.shape)
    with torch.no_grad():
        head.weight.copy_(kernel.T)
        head.bias.copy_(bias)
    return keras.Model(model.input, head_layer.input, name=f"{model.name}_features"), head


def load_imagenet(model, name: str, app: KerasApplication) -> None:
    """Keras's ImageNet `.h5` from local disk into `model` (WeightsMissing, one line, when it is not there)."""
    path = verified_weights_path(name)
    try:
        model.load_weights(str(path))
    except ValueError as e:
        raise ValueError(f"{name}: Keras's ImageNet weights do not fit this model ({str(e).splitlines()[0]}); "
                         f"build it at its input_size {app.input_size}") from None


def _info(spec: str, preprocessing: str | None = None) -> BackboneInfo:
    app = _application(spec)
    pixels = pixel_map(app.module, preprocessing)
    own = "" if preprocessing else ", its own"
    return BackboneInfo(f"{PREFIX}:{spec}", input_size=app.input_size, channels=3, mean=pixels.mean,
                        std=pixels.std, num_classes=1000, weights=("imagenet",),
                        description=f"Keras {spec} (keras.applications.{app.module}; preprocessing "
                                    f"{pixels.mode}{own})")


def _factory(spec: str) -> Factory:
    app = _application(spec)

    def factory(info: BackboneInfo, weights: str | None, preprocessing: str | None = None) -> Backbone:
        model = build_application(spec, info.input_size)
        if weights == "imagenet":
            with import_keras().device("cpu"):  # Keras would put what it assigns on its default device
                load_imagenet(model, info.name, app)
        described = _info(spec, preprocessing)
        info = replace(info, mean=described.mean, std=described.std, description=described.description)
        body, head = split_head(model)
        return KerasBackbone(info, KerasFeatures(body, app.module, preprocessing), head)

    return factory


def _resolve(spec: str) -> tuple[BackboneInfo, Factory]:
    return _info(spec), _factory(spec)


def _weights(spec: str) -> KerasWeightsFile:
    return KerasWeightsFile(f"{PREFIX}:{spec}", _application(spec))


register_backbone_family(BackboneFamily(
    prefix=PREFIX, resolve=_resolve, weights=_weights,
    description="Keras 3 ImageNet applications (the thesis's own models) on Keras's torch backend, Keras's .h5 "
                "weights; `preprocessing: thesis` gives the thesis code's caffe-then-/255",
    example="keras:ResNet50V2", preprocessings=(THESIS,),
))
