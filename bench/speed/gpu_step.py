"""The `ar` step at the scale of the thesis's ImageNet experiments (ResNet-50 at 224x224) with what a GPU needs to
be kept busy (bf16 autocast, channels_last, fused Adam, TF32), against the plain fp32 NCHW step, plus model-FLOPs
utilisation: the FLOPs the step actually performs, per second, over the GPU's dense bf16 peak.
"""
from __future__ import annotations

import re
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import Optional

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.methods.ar import Reprogrammed
from bench.speed import Measurement, Settings
from bench.speed.steps import (
    ar_step,
    load_note,
    make_ar_model,
    peak_memory_row,
    program_optimizer,
    random_batch,
    reset_peak_memory,
    step_counts,
    time_steps,
)

# Dense (no sparsity) bf16 tensor-core peak in TFLOP/s, from NVIDIA's datasheets. First match wins, so the more
# specific names come first ("H100 PCIe" before "H100", "A100" before "A10").
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    (r"GH200", 989.0),
    (r"H200", 989.0),
    (r"H100 NVL", 835.0),
    (r"H100 PCIe", 756.0),
    (r"H100", 989.0),  # SXM; its device name is e.g. "NVIDIA H100 80GB HBM3"
    (r"A100", 312.0),
    (r"L40S", 362.0),
    (r"\bA10\b", 125.0),  # not A10G, a different part
    (r"RTX 4090", 165.0),
    (r"V100", 125.0),  # fp16 tensor cores: V100 has no bf16, so autocast bf16 there runs far below this
)



def peak_bf16_tflops(gpu_name: str) -> Optional[float]:
    """Dense bf16 peak of the GPU named `gpu_name` (as torch.cuda.get_device_name gives it), None if unknown."""
    for pattern, tflops in PEAK_BF16_TFLOPS:
        if re.search(pattern, gpu_name):
            return tflops
    return None


def count_step_flops(model: Reprogrammed, optimizer: torch.optim.Optimizer, x01: torch.Tensor, y: torch.Tensor,
                     autocast_dtype: Optional[torch.dtype] = None) -> int:
    """FLOPs of one step as run: backward counts only the gradients autograd asks for (none for frozen weights)."""
    with FlopCounterMode(display=False) as counter:
        ar_step(model, optimizer, x01, y, autocast_dtype)
    return counter.get_total_flops()


@dataclass(frozen=True)
class StepConfig:
    backbone: str
    input_size: int
    task_size: int
    batch: int
    autocast_dtype: Optional[torch.dtype]  # the fast variant's; the naive one is always fp32
    fused_adam: bool


GPU_CONFIG = StepConfig("resnet50", 224, 28, 256, torch.bfloat16, True)  # MNIST-sized input, Elsayed et al.
CPU_STAND_IN = StepConfig("resnet18", 64, 16, 8, None, False)


@contextmanager
def tf32(enabled: bool):
    """TF32 for cuBLAS matmuls and cuDNN convolutions, restoring the process's flags afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _gpu_variant(config: StepConfig, device: torch.device, fast: bool, compile_backbone: bool,
                 warmup: int, steps: int) -> tuple[dict, int]:
    """Time one variant -> (its row, FLOPs of one of its steps)."""
    model = make_ar_model(config.backbone, config.input_size, True, task_size=config.task_size, device=device)
    if fast:
        model = model.to(memory_format=torch.channels_last)
    optimizer = program_optimizer(model, fused=fast and config.fused_adam)
    dtype = config.autocast_dtype if fast else None
    x01, y = random_batch(config.batch, config.task_size, device)
    flops = count_step_flops(model, optimizer, x01, y, dtype)  # eager, before any compile: the model's math
    step = lambda: ar_step(model, optimizer, x01, y, dtype)
    reset_peak_memory(device)
    compile_row = {}
    if compile_backbone:
        model.backbone.compile()
        compile_row["compile s"] = round(time_steps(step, 1, device), 1)  # the first call traces and compiles
    time_steps(step, warmup, device)
    seconds = time_steps(step, steps, device)
    row = {"images/s": round(config.batch * steps / seconds, 1), "ms/step": round(1000 * seconds / steps, 2),
           "GFLOP/step": round(flops / 1e9, 1), "steps/s": steps / seconds, **compile_row}
    return {**row, **peak_memory_row(device)}, flops


def _with_mfu(row: dict, flops: int, peak_tflops: Optional[float]) -> dict:
    steps_per_s = row.pop("steps/s")
    row["MFU"] = None if peak_tflops is None else round(flops * steps_per_s / (peak_tflops * 1e12), 4)
    return row


def _variants(cuda: bool, compile_backbone: bool) -> list[tuple[str, bool, bool]]:
    """(name, fast, compiled) for each variant timed; the first is the baseline the ratio divides by."""
    fast = "bf16 autocast, channels_last, fused Adam, TF32" if cuda else "fp32 channels_last"
    variants = [("naive: fp32 NCHW, Adam", False, False), (f"fast: {fast}", True, False)]
    if compile_backbone:
        variants.append(("fast + torch.compile(backbone)", True, True))
    return variants


def _notes(config: StepConfig, cuda: bool, gpu_name: str, peak: Optional[float], warmup: int, steps: int,
           compile_backbone: bool, problems: list[str]) -> list[str]:
    notes = [
        f"{config.backbone} (random init) on a {config.input_size}px canvas, {config.task_size}px grey inputs, "
        f"batch {config.batch}, {warmup} warm-up + {steps} timed steps on {gpu_name}; backbone frozen, Adam on W",
        "FLOPs counted with torch.utils.flop_counter.FlopCounterMode on one eager step (forward + the backward "
        "autograd runs: input gradients only, the backbone's weights are frozen); MFU = FLOPs/step * steps/s / peak",
        "naive keeps PyTorch's default precision flags (cuDNN convolutions may use TF32, cuBLAS matmuls do not)",
        *problems,
        load_note(),
    ]
    if not cuda:
        notes.insert(0, "CPU stand-in: the GPU figure needs --device cuda")
    elif peak is None:
        notes.append(f"MFU not computed: no dense bf16 peak on record for {gpu_name!r}")
    else:
        notes.append(f"MFU is of the dense bf16 peak of {gpu_name}, {peak:g} TFLOP/s, for every row (fp32 too)")
    if compile_backbone:
        notes.append("compile s: the first call after torch.compile (tracing + codegen), not counted in images/s")
    return notes


def gpu_ar_step(
    settings: Settings,
    *,
    batch: Optional[int] = None,
    steps: Optional[int] = None,
    warmup: Optional[int] = None,
    compile: Optional[bool] = None,
) -> Measurement:
    """images/s and MFU of the GPU `ar` step (ResNet-50, 224px, bf16, channels_last) vs the fp32 NCHW step.

    On CPU a tiny fp32 stand-in runs instead (ResNet-18 at 64px, batch 8) so the code path is exercised; its
    figures say nothing about a GPU. `compile` (default: on CUDA in a full run) adds a row with the backbone
    under torch.compile, its compile time reported apart from its steady-state rate.
    """
    device = settings.device
    cuda = device.type == "cuda"
    config = GPU_CONFIG if cuda else CPU_STAND_IN
    if batch is not None:
        config = replace(config, batch=batch)
    warmup, steps = step_counts(settings, steps, warmup)
    compile_backbone = (cuda and not settings.quick) if compile is None else compile
    gpu_name = torch.cuda.get_device_name(device) if cuda else "cpu"
    peak = peak_bf16_tflops(gpu_name) if cuda else None

    rows, notes = [], []
    for variant, fast, compiled in _variants(cuda, compile_backbone):
        # naive keeps PyTorch's default flags (cuDNN already allows TF32 for convolutions, cuBLAS does not)
        try:
            with tf32(True) if fast and cuda else nullcontext():
                row, flops = _gpu_variant(config, device, fast, compiled, warmup, steps)
            rows.append({"variant": variant, **_with_mfu(row, flops, peak)})
        except torch.OutOfMemoryError:
            # fp32 at batch 256 needs about twice bf16's activation memory: a smaller GPU may only fit the fast one
            rows.append({"variant": variant, "images/s": None, "MFU": None})
            notes.append(f"{variant}: out of memory at batch {config.batch}")
            reset_peak_memory(device)

    notes = _notes(config, cuda, gpu_name, peak, warmup, steps, compile_backbone, notes)
    naive_ips, fast_ips = rows[0]["images/s"], rows[1]["images/s"]
    return Measurement(
        name="ar step on GPU: bf16 + channels_last vs fp32" if cuda else "ar step, CPU stand-in: channels_last vs NCHW",
        rows=rows,
        ratio=fast_ips / naive_ips if naive_ips and fast_ips else None,
        ratio_label="images/s fast / naive (both eager)",
        target="",
        notes=notes,
    )
