"""The Keras ImageNet applications of the `keras:` family and the `.h5` weights file Keras downloads for each.

What is typed here is copied from Keras's own source (keras/src/applications/<module>.py): the module whose
`preprocess_input` the application uses, its `default_size`, and the `file_utils.get_file(fname, origin,
cache_subdir="models", file_hash=...)` call it makes for `weights="imagenet"` (MobileNet and MobileNetV2 pass no
file_hash: Keras publishes none for them). tests/test_keras_backbone.py checks the table against what Keras itself
asks `get_file` for and builds; nothing here imports Keras, so `reprogbench ls` costs no Keras import.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bench.models import checksums

_STORAGE = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class KerasApplication:
    module: str  # keras.applications.<module>: its preprocess_input, and where the application is defined
    input_size: int  # Keras's `default_size`
    weights_file: str  # the name Keras caches it under, in $KERAS_HOME/models
    weights_folder: str  # of the origin, under Keras's storage
    weights_md5: Optional[str] = None  # the `file_hash` Keras's source passes (None: it passes none)
    origin_name: str = ""  # the file's name at the origin, when it differs from `weights_file`

    @property
    def origin(self) -> str:
        return f"{_STORAGE}{self.weights_folder}/{self.origin_name or self.weights_file}"


def _tf_kernels(stem: str) -> str:
    return f"{stem}_weights_tf_dim_ordering_tf_kernels.h5"


KERAS_APPLICATIONS: dict[str, KerasApplication] = {
    "ResNet50V2": KerasApplication("resnet_v2", 224, _tf_kernels("resnet50v2"), "resnet",
                                   "3ef43a0b657b3be2300d5770ece849e0"),
    "ResNet101V2": KerasApplication("resnet_v2", 224, _tf_kernels("resnet101v2"), "resnet",
                                    "6343647c601c52e1368623803854d971"),
    "ResNet152V2": KerasApplication("resnet_v2", 224, _tf_kernels("resnet152v2"), "resnet",
                                    "a49b44d1979771252814e80f8ec446f9"),
    "MobileNet": KerasApplication("mobilenet", 224, "mobilenet_1_0_224_tf.h5", "mobilenet"),
    "MobileNetV2": KerasApplication("mobilenet_v2", 224, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
                                    "mobilenet_v2"),
    "NASNetMobile": KerasApplication("nasnet", 224, "nasnet_mobile.h5", "nasnet", "020fb642bf7360b370c678b08e0adf61",
                                     origin_name="NASNet-mobile.h5"),
    "VGG16": KerasApplication("vgg16", 224, _tf_kernels("vgg16"), "vgg16", "64373286793e3c8b2b4e3219cbf3544b"),
    "VGG19": KerasApplication("vgg19", 224, _tf_kernels("vgg19"), "vgg19", "cbe5617147190e668d6c5d5026f83318"),
    "InceptionV3": KerasApplication("inception_v3", 299, _tf_kernels("inception_v3"), "inception_v3",
                                    "9a0d58056eeedaa3f26cb7ebd46da564"),
    "InceptionResNetV2": KerasApplication("inception_resnet_v2", 299, _tf_kernels("inception_resnet_v2"),
                                          "inception_resnet_v2", "e693bd0210a403b3192acc6073ad2e96"),
}


def keras_home() -> Path:
    """Keras's cache root, by Keras's rule ($KERAS_HOME, else ~/.keras), read now (Keras reads it once, at import)."""
    explicit = os.environ.get("KERAS_HOME")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = Path("~").expanduser()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


@dataclass(frozen=True)
class KerasWeightsFile:
    """The ImageNet `.h5` file of one Keras application (the `WeightsFile` protocol of bench.models.weights)."""

    name: str  # the backbone name, e.g. "keras:VGG16"
    app: KerasApplication

    def source(self) -> str:
        return self.app.origin

    def path(self) -> Path:
        """Where Keras's `get_file(..., cache_subdir="models")` keeps it."""
        return keras_home() / "models" / self.app.weights_file

    def local_path(self) -> Optional[Path]:
        return self.path() if self.path().is_file() else None

    def cache_hint(self) -> str:
        return f"KERAS_HOME (looked for {self.path()})"

    def download(self) -> Path:
        """Login-node step: Keras's own `get_file`, which checks the md5 Keras's source pins; then the full sha256
        is pinned beside the file (bench.models.checksums), so every later load checks every bit."""
        from bench.models.keras_backend import import_keras

        # also when the file is there: get_file then checks it against the md5 (and fetches it again on a mismatch)
        import_keras().utils.get_file(self.app.weights_file, self.app.origin, cache_subdir="models",
                                      file_hash=self.app.weights_md5, cache_dir=str(keras_home()))
        checksums.pin(self.path())
        return self.path()
