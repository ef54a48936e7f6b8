"""Keras 3 on its torch backend, and each application's preprocessing read from Keras itself.

`import_keras()` is the one place Keras is imported: `KERAS_BACKEND=torch` has to be set before the first import
(without it Keras 3 looks for TensorFlow), and a Keras already imported on another backend is an error in one line.

A Keras application wants NHWC pixels in 0..255 passed through its module's `preprocess_input`, which is one of
`imagenet_utils.preprocess_input`'s modes ("caffe": RGB -> BGR, minus the ImageNet mean; "tf": to [-1, 1];
"torch": to [0, 1], minus mean, over std). Rather than typing those constants, `pixel_map` calls the function on
four probe pixels: every mode is an affine map of each pixel, with at most a reordering of channels, so the probe
gives it exactly, as the per-channel mean/std a `Backbone` applies to inputs in [0, 1] plus a channel order.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MODES = ("caffe", "tf", "torch")  # imagenet_utils.preprocess_input's modes
THESIS = "thesis"  # the thesis code's preprocessing: caffe mode, then divided by 255 (bench.models.keras_family)


def import_keras():
    """Keras, on the torch backend (its modules are then torch.nn.Modules the trainer can use)."""
    wanted = os.environ.setdefault("KERAS_BACKEND", "torch")
    if wanted != "torch":
        raise RuntimeError(f"KERAS_BACKEND is {wanted!r}; the keras: backbones need KERAS_BACKEND=torch (unset it)")
    import keras

    if keras.backend.backend() != "torch":  # imported before us, on another backend
        raise RuntimeError(f"Keras was imported with the {keras.backend.backend()} backend; the keras: backbones "
                           "need KERAS_BACKEND=torch set before Keras is first imported")
    return keras


@dataclass(frozen=True)
class PixelMap:
    """`preprocess_input(255 * x)` for x in [0, 1], per input (RGB) channel: (x - mean) / std, then the channels
    reordered (`order[k]`: the input channel that becomes channel k; (2, 1, 0) is caffe's BGR)."""

    mode: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    order: tuple[int, ...]


def _probe(preprocess: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(A, b) with preprocess(255 * x) == A @ x + b for one RGB pixel x in [0, 1]."""
    pixels = np.zeros((4, 1, 1, 3), np.float32)  # black, then full red, green, blue
    pixels[1:, 0, 0] = 255 * np.eye(3, dtype=np.float32)
    out = np.asarray(preprocess(pixels.copy()), np.float64).reshape(4, 3)
    return (out[1:] - out[0]).T, out[0]


def _as_pixel_map(mode: str, matrix: np.ndarray, bias: np.ndarray) -> PixelMap:
    order = [int(i) for i in np.argmax(np.abs(matrix), axis=1)]
    scale = matrix[np.arange(3), order]
    reordering = np.zeros((3, 3))
    reordering[np.arange(3), order] = scale
    if sorted(order) != [0, 1, 2] or not np.allclose(matrix, reordering):
        raise ValueError(f"preprocessing {mode!r} is not a per-channel affine map with a channel reordering")
    mean, std = np.zeros(3), np.zeros(3)
    mean[order], std[order] = -bias / scale, 1 / scale
    return PixelMap(mode, tuple(float(v) for v in mean), tuple(float(v) for v in std), tuple(order))


def mode_preprocess(mode: str) -> Callable[[np.ndarray], np.ndarray]:
    keras = import_keras()
    if mode == THESIS:  # what the thesis's code fed every backbone
        return lambda x: keras.applications.imagenet_utils.preprocess_input(x, mode="caffe") / 255.0
    return lambda x: keras.applications.imagenet_utils.preprocess_input(x, mode=mode)


def preprocess(pixels, module: str, preprocessing: str | None = None):
    """NHWC 0..255 pixels (a torch tensor: differentiable) as Keras's application `module` wants them, or as a named
    preprocessing (a mode, or THESIS) gives them."""
    keras = import_keras()
    if preprocessing is None:
        return getattr(keras.applications, module).preprocess_input(pixels)
    return mode_preprocess(preprocessing)(pixels)


def application_mode(module: str) -> str:
    """Which of MODES `keras.applications.<module>.preprocess_input` applies, read by calling it."""
    own = _probe(getattr(import_keras().applications, module).preprocess_input)
    for mode in MODES:
        matrix, bias = _probe(mode_preprocess(mode))
        if np.allclose(own[0], matrix, rtol=1e-6, atol=1e-6) and np.allclose(own[1], bias, rtol=1e-6, atol=1e-6):
            return mode
    raise ValueError(f"keras.applications.{module}.preprocess_input matches none of the modes {MODES}")


def pixel_map(module: str, preprocessing: str | None = None) -> PixelMap:
    """The application's own preprocessing (`preprocessing` None) or a named one (a mode, or THESIS)."""
    mode = preprocessing or application_mode(module)
    if mode not in (*MODES, THESIS):
        raise ValueError(f"unknown preprocessing {mode!r}; known: {', '.join((*MODES, THESIS))}")
    return _as_pixel_map(mode, *_probe(mode_preprocess(mode)))
