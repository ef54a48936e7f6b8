"""NASNetMobile on Keras's torch backend (as the keras: family builds it, the refusal bypassed) against the same
model on the JAX backend: same random weights, same input, every layer's output and the input gradient.

    python tests/keras_crosscheck.py OUT [SIZE [FLOATX]]   # both sides, each in its own process, then compares

FLOATX float64 runs both sides in double precision: then the two agree to rounding at ReLU kinks as well, which
in float32 (forward within 2e-5) send a few input-gradient elements different ways.

The torch side writes the weights in the legacy `.h5` format of Keras's ImageNet files; the JAX side builds
`keras.applications.NASNetMobile` (where Keras allows it) and loads them. docs/backbones-keras.md has the figures.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def side(backend: str, out: Path, size: int, floatx: str) -> None:
    os.environ["KERAS_BACKEND"] = backend
    if backend == "jax" and floatx == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.config.set_floatx(floatx)

    if backend == "torch":
        import torch

        from bench.models.keras_family import build_application

        keras.utils.set_random_seed(0)
        model = build_application("NASNetMobile", size)
        with h5py.File(out / "weights.h5", "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, model)
        x = np.random.default_rng(0).uniform(-1, 1, (2, size, size, 3)).astype(floatx)
        np.save(out / "x.npy", x)
        xt = torch.tensor(x, requires_grad=True)
        model(xt, training=False).sum().backward()
        grad = xt.grad.numpy()
    else:
        import jax

        model = keras.applications.NASNetMobile(input_shape=(size, size, 3), weights=None, classifier_activation=None)
        model.load_weights(str(out / "weights.h5"))
        x = np.load(out / "x.npy")
        grad = np.asarray(jax.grad(lambda v: model(v, training=False).sum())(x))
    probe = keras.Model(model.input, [layer.output for layer in model.layers[1:]])
    outputs = probe(x, training=False)
    np.savez(out / f"{backend}.npz", grad=grad, **{layer.name: keras.ops.convert_to_numpy(o)
                                                   for layer, o in zip(model.layers[1:], outputs, strict=True)})


def compare(out: Path) -> dict:
    torch_side, jax_side = np.load(out / "torch.npz"), np.load(out / "jax.npz")
    layers = [k for k in jax_side.files if k != "grad"]
    diff = {k: float(np.abs(torch_side[k] - jax_side[k]).max()) for k in layers}
    logits = layers[-1]
    grad = float(np.abs(torch_side["grad"] - jax_side["grad"]).max())
    relative = float(np.linalg.norm(torch_side["grad"] - jax_side["grad"]) / np.linalg.norm(jax_side["grad"]))
    return {"grad_relative_l2": relative, "layers": len(layers),
            "layers_over_1e-4": sorted(k for k, d in diff.items() if d > 1e-4),
            "max_layer_diff": max(diff.values()), "logits_diff": diff[logits],
            "max_abs_logit": float(np.abs(jax_side[logits]).max()), "grad_diff": grad,
            "max_abs_grad": float(np.abs(jax_side["grad"]).max())}


def main(out: Path, size: int, floatx: str = "float32") -> dict:
    out.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    for backend in ("torch", "jax"):  # each in its own process: Keras picks its backend once, at import
        subprocess.run([sys.executable, __file__, "--side", backend, str(out), str(size), floatx], check=True,
                       env=env)
    return compare(out)


if __name__ == "__main__":
    if sys.argv[1] == "--side":
        side(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        print(main(Path(sys.argv[1]), *(int(a) if a.isdigit() else a for a in sys.argv[2:4])))
