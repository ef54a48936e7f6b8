"""The speed measurements measure what they claim: which gradients each `ar` variant computes, that both input
paths hand the model the same images, and that each measurement returns usable figures. Never durations."""
from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from bench.speed import Measurement, Settings
from bench.speed.data_path import data_path, device_batches, loader_batches, sample_transform
from bench.speed.gpu_step import count_step_flops, gpu_ar_step, peak_bf16_tflops
from bench.speed.steps import ar_step, frozen_ar_step, make_ar_model, program_optimizer, random_batch

CPU = torch.device("cpu")


def settings(tmp_path) -> Settings:
    return Settings(CPU, quick=True, workdir=str(tmp_path))


def one_step(frozen: bool):
    model = make_ar_model("resnet18", 32, frozen, task_size=16)
    x01, y = random_batch(4, 16, CPU)
    ar_step(model, program_optimizer(model), x01, y)
    return model


# --------------------------------------------------------------------------- (a) frozen vs naive gradients


def test_frozen_step_leaves_backbone_without_grads_and_trains_the_program():
    model = one_step(frozen=True)
    assert all(not p.requires_grad for p in model.backbone.parameters())
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.learned.W.grad is not None and model.learned.W.grad.abs().sum() > 0
    assert not model.backbone.training  # BatchNorm statistics stay put


def test_naive_step_computes_backbone_grads_but_only_the_program_moves():
    model = make_ar_model("resnet18", 32, frozen=False, task_size=16)
    before = {name: p.detach().clone() for name, p in model.backbone.named_parameters()}
    x01, y = random_batch(4, 16, CPU)
    ar_step(model, program_optimizer(model), x01, y)
    grads = [p.grad for p in model.backbone.parameters()]
    assert all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    assert model.learned.W.grad.abs().sum() > 0
    assert not model.backbone.training  # still eval mode: the variants differ in gradients only
    for name, p in model.backbone.named_parameters():  # the optimizer holds the program alone
        assert torch.equal(p, before[name]), name
    assert model.learned.W.abs().sum() > 0  # Adam moved W off its zero init


def test_both_variants_compute_the_same_loss_and_program_gradient():
    x01, y = random_batch(4, 16, CPU, seed=3)
    frozen, naive = (make_ar_model("resnet18", 32, f, task_size=16) for f in (True, False))
    losses = [ar_step(m, program_optimizer(m), x01, y) for m in (frozen, naive)]
    torch.testing.assert_close(losses[0], losses[1])
    torch.testing.assert_close(frozen.learned.W.grad, naive.learned.W.grad)


def test_peak_table_matches_specific_names_first():
    assert peak_bf16_tflops("NVIDIA H100 80GB HBM3") == 989
    assert peak_bf16_tflops("NVIDIA H100 PCIe") == 756
    assert peak_bf16_tflops("NVIDIA A100-SXM4-80GB") == 312
    assert peak_bf16_tflops("NVIDIA A10") == 125
    assert peak_bf16_tflops("NVIDIA A10G") is None
    assert peak_bf16_tflops("NVIDIA GH200 480GB") == 989
    assert peak_bf16_tflops("Some Future GPU") is None


# --------------------------------------------------------------------------- (b) the two input paths agree


def grey_set(n: int = 40, size: int = 28, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=g)
    return images, torch.arange(n) % 10


# The DataLoader path resizes the uint8 PIL image with PIL, which rounds its output to uint8 (and uses
# fixed-point weights); the device path resizes floats. Both use the same antialiased bilinear (triangle)
# filter, which torch's antialias=True was written to match, so they differ by that rounding: under 1/255.
TOLERANCE = 1.01 / 255


def test_per_sample_transform_matches_batched_fit():
    images, labels = grey_set()
    transform = sample_transform(3, 16)
    per_sample = torch.stack([transform(Image.fromarray(im[0].numpy())) for im in images])
    batched, _ = next(device_batches(images, labels, batch_size=len(labels), shuffle=False))
    assert per_sample.shape == batched.shape == (len(labels), 3, 16, 16)
    assert per_sample.dtype == batched.dtype == torch.float32
    assert (per_sample - batched).abs().max() <= TOLERANCE
    assert (per_sample - batched).abs().mean() < 0.5 / 255  # rounding, not a different filter


def test_loader_and_device_paths_yield_the_same_batches_in_order():
    images, labels = grey_set(n=40)
    dev = list(device_batches(images, labels, batch_size=16, shuffle=False))
    ldr = list(loader_batches(images, labels, CPU, batch_size=16, num_workers=0, shuffle=False))
    assert [len(y) for _, y in dev] == [len(y) for _, y in ldr] == [16, 16, 8]
    for (xd, yd), (xl, yl) in zip(dev, ldr, strict=True):
        assert torch.equal(yd, yl)
        assert xd.shape == xl.shape
        assert (xd - xl).abs().max() <= TOLERANCE


def test_shuffled_epochs_cover_every_sample_once():
    images, labels = grey_set(n=50)
    for batches in (device_batches(images, labels, batch_size=16, seed=1),
                    loader_batches(images, labels, CPU, batch_size=16, num_workers=0, seed=1)):
        seen = torch.cat([y for _, y in batches])
        assert sorted(seen.tolist()) == sorted(labels.tolist())


# --------------------------------------------------------------------------- (c) the measurements run


def check(m: Measurement, variants: int) -> None:
    assert isinstance(m, Measurement)
    assert len(m.rows) == variants
    for row in m.rows:
        assert row["images/s"] > 0 and math.isfinite(row["images/s"])
    assert m.ratio is not None and m.ratio > 0 and math.isfinite(m.ratio)
    assert m.ratio_label and m.notes


def test_frozen_ar_step_measurement(tmp_path):
    m = frozen_ar_step(settings(tmp_path), batch=4, warmup=1, steps=1)
    check(m, 2)
    assert [r["variant"] for r in m.rows] == ["frozen", "naive"]
    assert m.rows[0]["backbone params with grad"] == 0
    assert m.rows[1]["backbone params with grad"] > 0
    assert m.target.startswith(">= 1.5x")


def test_gpu_ar_step_runs_as_a_cpu_stand_in(tmp_path):
    m = gpu_ar_step(settings(tmp_path), batch=2, warmup=1, steps=1)
    check(m, 2)
    assert any("CPU stand-in" in note for note in m.notes)
    assert all(row["MFU"] is None for row in m.rows)
    assert all(row["GFLOP/step"] > 0 for row in m.rows)


def test_flop_count_sees_the_weight_gradients_freezing_skips():
    # per conv: forward 1 unit, input gradient 1, weight gradient 1; the frozen step skips the last
    x01, y = random_batch(2, 16, CPU)
    frozen, naive = (make_ar_model("resnet18", 32, f, task_size=16) for f in (True, False))
    ratio = count_step_flops(frozen, program_optimizer(frozen), x01, y) / count_step_flops(
        naive, program_optimizer(naive), x01, y)
    assert 0.6 < ratio < 0.72


@pytest.mark.parametrize("workers", [0, 2])
def test_data_path_measurement(tmp_path, workers):
    m = data_path(settings(tmp_path), max_images=600, num_workers=workers)
    check(m, 2)
    assert any("worker start-up" in note for note in m.notes)
