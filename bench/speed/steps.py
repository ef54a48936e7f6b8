"""The `ar` training step and what a frozen backbone saves (the GPU step and its MFU: `bench.speed.gpu_step`).

`frozen_ar_step`: adversarial reprogramming trains only the program W, but the gradient still has to flow back
through the whole backbone to reach W, which sits at the input. What freezing saves is the weight gradients:
with the backbone's parameters marked `requires_grad=False` autograd skips them, while the thesis's Keras code
(its non-trainable flag missing) computed a weight gradient for every layer and then threw it away. Both
variants here keep the backbone in eval mode and optimise the program alone, so they differ only in that.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Optional

import torch
import torch.nn.functional as F

from bench.data import DatasetInfo
from bench.methods.ar import AR, ARParams, Reprogrammed
from bench.models import create_backbone
from bench.speed import Measurement, Settings

NUM_CLASSES = 10

# --------------------------------------------------------------------------- building blocks (tested)


def make_ar_model(
    backbone_name: str = "resnet18",
    input_size: int = 32,
    frozen: bool = True,
    *,
    task_size: int = 16,
    num_classes: int = NUM_CLASSES,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> Reprogrammed:
    """The `ar` model on a random-init backbone (weights do not change the timing), as `AR().build` makes it.

    `frozen=False` re-enables the backbone's weight gradients while keeping it in eval mode (BatchNorm statistics
    fixed), which reproduces the thesis code's wasted work without changing what is learned.
    """
    torch.manual_seed(seed)
    backbone = create_backbone(backbone_name, input_size=input_size)
    task = DatasetInfo("random", num_classes, 1, task_size, "random uint8 images made up for timing")
    model = AR().build(backbone, task, ARParams(), seed)
    if not frozen:
        model.backbone.requires_grad_(True)
    return model.to(device)


def program_optimizer(model: Reprogrammed, fused: bool = False) -> torch.optim.Adam:
    """Adam on the program only, in both variants: the naive one's backbone gradients are computed, never used."""
    return torch.optim.Adam(model.learned.parameters(), lr=1e-3, fused=fused)


def ar_step(
    model: Reprogrammed,
    optimizer: torch.optim.Optimizer,
    x01: torch.Tensor,
    y: torch.Tensor,
    autocast_dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """One training step as the trainer takes it: forward, cross-entropy + λ‖W‖², backward, optimizer step."""
    # every gradient, not just the optimizer's: the naive variant's unused weight gradients must not pile up
    model.zero_grad(set_to_none=True)
    with torch.autocast(x01.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        logits = model(x01).float()
    loss = F.cross_entropy(logits, y) + model.regularizer()
    loss.backward()
    optimizer.step()
    return loss.detach()


def random_batch(
    batch: int, task_size: int, device: torch.device, seed: int = 0, num_classes: int = NUM_CLASSES
) -> tuple[torch.Tensor, torch.Tensor]:
    """New-task images as the trainer feeds them (uint8 -> [0, 1] floats, one channel) and labels."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, 1, task_size, task_size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, num_classes, (batch,), generator=g)
    return images.to(device).float().div_(255), labels.to(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[], object], steps: int, device: torch.device) -> float:
    """Seconds for `steps` calls of `step`, with the device drained before and after (CUDA runs asynchronously)."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return time.perf_counter() - start


def load_note() -> str:
    """The machine's load average, for the notes: on a shared box another process halves CPU figures, and
    OpenMP's threads stall on a busy core far worse than that, so a reader needs to know it was busy."""
    if not hasattr(os, "getloadavg"):
        return "load average: unavailable on this OS"
    one, five, _ = os.getloadavg()
    return f"load average while measuring: {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def backbone_params_with_grad(model: Reprogrammed) -> int:
    return sum(p.grad is not None for p in model.backbone.parameters())


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_row(device: torch.device) -> dict:
    # on CPU there is no allocator statistic worth reporting, so the column is left out rather than faked
    if device.type != "cuda":
        return {}
    return {"peak MiB": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}


def step_counts(settings: Settings, steps: Optional[int], warmup: Optional[int]) -> tuple[int, int]:
    quick_warmup, quick_steps, full_warmup, full_steps = 3, 10, 5, 40
    default_warmup, default_steps = (quick_warmup, quick_steps) if settings.quick else (full_warmup, full_steps)
    return (default_warmup if warmup is None else warmup), (default_steps if steps is None else steps)


# --------------------------------------------------------------------------- frozen vs naive


def _time_ar_model(model: Reprogrammed, x01: torch.Tensor, y: torch.Tensor, warmup: int, steps: int) -> dict:
    device = x01.device
    optimizer = program_optimizer(model)
    step = lambda: ar_step(model, optimizer, x01, y)
    reset_peak_memory(device)
    time_steps(step, warmup, device)
    seconds = time_steps(step, steps, device)
    return {
        "images/s": round(len(y) * steps / seconds, 1),
        "ms/step": round(1000 * seconds / steps, 2),
        "backbone params with grad": backbone_params_with_grad(model),
        **peak_memory_row(device),
    }


def frozen_ar_step(
    settings: Settings,
    *,
    batch: int = 128,
    steps: Optional[int] = None,
    warmup: Optional[int] = None,
    backbone: str = "resnet18",
    input_size: int = 32,
    task_size: int = 16,
) -> Measurement:
    """images/s of the `ar` step with the backbone frozen vs with its weight gradients computed and discarded."""
    device = settings.device
    warmup, steps = step_counts(settings, steps, warmup)
    x01, y = random_batch(batch, task_size, device)
    rows = []
    for variant, frozen in (("frozen", True), ("naive", False)):
        model = make_ar_model(backbone, input_size, frozen, task_size=task_size, device=device)
        rows.append({"variant": variant, **_time_ar_model(model, x01, y, warmup, steps)})
    frozen_ips, naive_ips = rows[0]["images/s"], rows[1]["images/s"]
    return Measurement(
        name="ar step: frozen vs naive backbone",
        rows=rows,
        ratio=frozen_ips / naive_ips,
        ratio_label="images/s frozen / naive",
        target=f">= 1.5x ({backbone} at {input_size}x{input_size}, CPU)",
        notes=[
            f"{backbone} (random init) on a {input_size}px canvas, {task_size}x{task_size}x1 random uint8 inputs, "
            f"batch {batch}, {warmup} warm-up + {steps} timed steps on {device}",
            "both variants: backbone in eval mode, Adam on the program only, CE + lambda*|W|^2; naive = "
            "backbone.requires_grad_(True), so autograd also computes every weight gradient, then drops it",
            "gradients still flow through the frozen backbone to reach the program; only weight gradients are saved",
            "variants run one after the other in this process; the ratio, not the absolute rate, is the figure",
            load_note(),
        ],
    )
