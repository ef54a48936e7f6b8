"""`torchvision:<model>.<WEIGHTS>`: every torchvision classification model with its named weights
(`torchvision.models.get_model_weights(model)[WEIGHTS]`, e.g. `torchvision:resnet50.IMAGENET1K_V2`).

Input size, mean and std are the weights' own `transforms()` (ImageClassification: the centre crop and the
normalisation they were trained with), the classes `len(meta["categories"])`. The head is the model's final
`nn.Linear` (fc, classifier[-1], heads.head, head: found generically), the body the model with it replaced by
Identity. Weights are the file torch hub caches for the weights' URL; the local file is checked, then torchvision's
own builder loads it (`builder(weights=...)`, which reads that cached file and applies the weights' own settings,
e.g. Inception's `transform_input`), so nothing is downloaded.

Sizes: a convolutional net pools adaptively and takes any input size. A ViT or MaxViT is built for one size (its
position embeddings): at random init the size asked for is passed to its builder (`image_size` / `input_size`);
with pretrained weights any other size than theirs is a one-line ValueError. `DEFAULT` is refused: it names
different weights in different torchvision versions. SqueezeNet (a conv classifier) has no Linear head to split.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import os

import torchvision
from torch import nn
from torchvision.models import get_model_builder, get_model_weights, list_models
from torchvision.transforms._presets import ImageClassification

from bench.models.backbone import Backbone, BackboneInfo
from bench.models.registry import BackboneFamily, Factory, register_backbone_family
from bench.models.weights import WeightsFile, verified_weights_path
from bench.models.weights_caches import TorchHubFile
from bench.registry import UnknownName

PREFIX = "torchvision"
SIZE_PARAMETERS = ("image_size", "input_size")  # ViT's and MaxViT's constructor argument fixing the input size


@functools.cache
def classification_models() -> tuple[str, ...]:
    return tuple(list_models(module=torchvision.models))  # not detection, segmentation, video, ...


def weights_of(spec: str):
    """(model, weights enum member) of `model.WEIGHTS`; UnknownName (one line, what exists) for anything else."""
    model, dot, tag = spec.partition(".")
    if model not in classification_models():
        raise UnknownName(f"unknown torchvision classification model {model!r} in torchvision:{spec} "
                          f"(torchvision {torchvision.__version__}); `torchvision.models.list_models("
                          "torchvision.models)` lists them")
    members = [t for t in get_model_weights(model).__members__ if t != "DEFAULT"]
    if not (dot and tag in members):
        why = "DEFAULT changes meaning between torchvision versions" if tag == "DEFAULT" else \
            (f"no weights {tag!r}" if dot else "no weights named")
        raise UnknownName(f"torchvision:{spec}: {why}; {model} has {', '.join(members)} (e.g. "
                          f"torchvision:{model}.{members[0]})")
    return model, get_model_weights(model)[tag]


def _eval_transform(spec: str) -> ImageClassification:
    transform = weights_of(spec)[1].transforms()
    if not isinstance(transform, ImageClassification):
        raise ValueError(f"torchvision:{spec}: its weights' transforms() is {type(transform).__name__}, "
                         "not an ImageClassification preset")
    return transform


def torchvision_info(spec: str) -> BackboneInfo:
    model, weights = weights_of(spec)
    transform = _eval_transform(spec)
    crop = transform.crop_size[0]
    label = "imagenet" if weights.name.startswith("IMAGENET1K") else weights.name.lower()
    return BackboneInfo(
        f"{PREFIX}:{spec}", input_size=crop, channels=3, mean=tuple(transform.mean), std=tuple(transform.std),
        num_classes=len(weights.meta["categories"]), weights=(label,),
        description=f"torchvision {model} {weights.name} (resize {transform.resize_size[0]}, crop {crop}, "
                    f"{transform.interpolation.value})",
    )


def torchvision_weights(spec: str) -> WeightsFile:
    return TorchHubFile(f"{PREFIX}:{spec}", weights_of(spec)[1].url)


def size_parameter(model: str) -> str | None:
    """The constructor argument that fixes the model's input size, if it has one (ViT, MaxViT)."""
    cls = inspect.signature(get_model_builder(model)).return_annotation
    params = inspect.signature(cls.__init__).parameters if isinstance(cls, type) else {}
    return next((p for p in SIZE_PARAMETERS if p in params), None)


def split_final_linear(model: nn.Module, num_classes: int) -> tuple[nn.Module, nn.Linear]:
    """(the model with its final Linear replaced by Identity, that Linear): body + head == model."""
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears or linears[-1][1].out_features != num_classes:
        raise TypeError(f"{type(model).__name__} does not end in a Linear layer with {num_classes} outputs "
                        "(e.g. SqueezeNet's classifier is a conv): no head to split off")
    name, head = linears[-1]
    parent_name, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, leaf, nn.Identity())
    return model, head


@contextlib.contextmanager
def tensors_only_loads():
    """torch.hub.load_state_dict_from_url, which torchvision's builders load with, unpickles with weights_only=False;
    torch's TORCH_FORCE_WEIGHTS_ONLY_LOAD makes that load tensors-only, as every other load here is."""
    saved = {k: os.environ.pop(k, None) for k in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")}
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None)
            if value is not None:
                os.environ[key] = value


def _build(spec: str, info: BackboneInfo, pretrained: bool) -> nn.Module:
    model, weights = weights_of(spec)
    builder, native, kwargs = get_model_builder(model), _eval_transform(spec).crop_size[0], {}
    parameter = size_parameter(model)
    if parameter and info.input_size != native:
        if pretrained:
            raise ValueError(f"{info.name} takes {native}x{native} input only (its pretrained position embeddings "
                             f"are sized for it), not {info.input_size}; drop input_size or set it to {native}")
        kwargs[parameter] = info.input_size  # random init: built for the size asked for
    if pretrained:
        verified_weights_path(info.name)  # the cached file torchvision reads below, checked; or one line, unbuilt
        with tensors_only_loads():
            return builder(weights=weights, progress=False, **kwargs)
    net = builder(weights=None, **kwargs)
    if getattr(net, "aux_logits", False):
        net.aux_logits = False  # GoogLeNet / Inception v3: one output, as torchvision sets up its pretrained ones
    return net


def resolve(spec: str) -> tuple[BackboneInfo, Factory]:
    info = torchvision_info(spec)

    def factory(info: BackboneInfo, weights: str | None) -> Backbone:
        body, head = split_final_linear(_build(spec, info, weights is not None), info.num_classes)
        return Backbone(info, body, head)

    return info, factory


register_backbone_family(BackboneFamily(
    PREFIX, resolve, torchvision_weights,
    description="any torchvision classifier with named weights (torchvision.models.get_model_weights(MODEL)); "
                "preprocessing from the weights' transforms()",
    example="torchvision:resnet50.IMAGENET1K_V2",
))
