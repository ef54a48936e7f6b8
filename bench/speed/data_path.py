"""The input path of an epoch: the trainer's device-resident batches vs a per-sample torchvision DataLoader.

The trainer keeps a task's uint8 images on the device and makes each batch with one index, one `.float()` and one
batched `fit` (channels + antialiased resize). The usual PyTorch recipe instead decodes and transforms every
sample in Python, in worker processes, collates, then copies the batch over. For the small grey images
reprogramming feeds (28x28 -> 16px on a 3-channel backbone) the per-sample Python overhead dominates, so this
measures one epoch of each, batches produced and moved to the device but not trained on.
"""
from __future__ import annotations

import time
from collections.abc import Iterator

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from bench.data import dataset_available, load_task
from bench.methods.inputs import fit
from bench.speed import Measurement, Settings
from bench.speed.steps import load_note

QUICK_MAX_IMAGES = 10_000
SIZE, CHANNELS = 16, 3  # a 16px input on a 3-channel backbone, as `ar` gets Fashion-MNIST onto ResNet's canvas


# --------------------------------------------------------------------------- the two paths (tested)


def device_batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int = 128,
    channels: int = CHANNELS,
    size: int = SIZE,
    seed: int = 0,
    shuffle: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The trainer's path: `images` (uint8 NCHW) already on the device, whole batches converted at once."""
    n = len(labels)
    if shuffle:  # as the trainer draws it: a seeded CPU permutation, moved to the data's device
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(labels.device)
    else:
        order = torch.arange(n, device=labels.device)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        yield fit(images[idx].float().div_(255), channels, size), labels[idx]


def sample_transform(channels: int = CHANNELS, size: int = SIZE) -> v2.Compose:
    """The per-sample torchvision recipe for a grey PIL image -> float CHW in [0, 1]."""
    return v2.Compose([
        v2.Resize(size, antialias=True),
        v2.Grayscale(num_output_channels=channels),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
    ])


class GreyImages(Dataset):
    """Like torchvision's MNIST/FashionMNIST: uint8 arrays in memory, a PIL image made per `__getitem__`."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: v2.Compose):
        self.images = images[:, 0].numpy()  # (N, H, W) uint8
        self.labels = labels.numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def loader_batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    *,
    batch_size: int = 128,
    channels: int = CHANNELS,
    size: int = SIZE,
    num_workers: int = 2,
    seed: int = 0,
    shuffle: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The DataLoader path: `images` (uint8 NCHW, on CPU) through `sample_transform` in workers, then to `device`.

    The workers start when iteration does, so timing this generator's epoch includes their start-up, as a real
    epoch pays it with persistent_workers=False.
    """
    cuda = device.type == "cuda"
    loader = DataLoader(
        GreyImages(images.cpu(), labels.cpu(), sample_transform(channels, size)),
        batch_size=batch_size, shuffle=shuffle, num_workers=num_workers, pin_memory=cuda,
        persistent_workers=False, generator=torch.Generator().manual_seed(seed),
    )
    for x, y in loader:
        yield x.to(device, non_blocking=cuda), y.to(device, non_blocking=cuda)


# --------------------------------------------------------------------------- timing


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_epoch(batches: Iterator[tuple[torch.Tensor, torch.Tensor]], device: torch.device) -> tuple[float, int, dict]:
    """Consume one epoch -> (seconds, images, what the first batch looked like)."""
    _synchronize(device)
    start = time.perf_counter()
    count, first = 0, None
    for x, y in batches:
        if first is None:  # cheap: shape and dtype only, the range is read after the clock stops
            first = x
        count += len(y)
    _synchronize(device)
    seconds = time.perf_counter() - start
    assert first is not None, "an epoch with no batches"
    look = {"shape": tuple(first.shape), "dtype": first.dtype,
            "min": first.min().item(), "max": first.max().item()}
    return seconds, count, look


def _check_same_look(a: dict, b: dict) -> None:
    """Both paths must hand the model the same kind of batch, or the comparison is meaningless."""
    if a["shape"] != b["shape"] or a["dtype"] != b["dtype"]:
        raise RuntimeError(f"the two paths disagree on the batch: {a} vs {b}")
    for look in (a, b):
        if not 0.0 <= look["min"] <= look["max"] <= 1.0:
            raise RuntimeError(f"batch values outside [0, 1]: {look}")


def _load_grey_images(max_images: int | None) -> tuple[str, torch.Tensor, torch.Tensor]:
    name = "fashion_mnist" if dataset_available("fashion_mnist") else "digits"
    task = load_task(name, max_train=max_images)
    return name, task.train.images, task.train.labels


def data_path(
    settings: Settings,
    *,
    max_images: int | None = None,
    batch_size: int = 128,
    num_workers: int = 2,
) -> Measurement:
    """images/s of one epoch of `ar` input batches: device-resident tensors vs a per-sample DataLoader."""
    device = settings.device
    if max_images is None and settings.quick:
        max_images = QUICK_MAX_IMAGES
    name, images, labels = _load_grey_images(max_images)

    # once per run, not per epoch, so it stays out of the epoch time
    _synchronize(device)
    start = time.perf_counter()
    images_dev, labels_dev = images.to(device), labels.to(device)
    _synchronize(device)
    upload_s = time.perf_counter() - start

    dev_s, dev_n, dev_look = time_epoch(device_batches(images_dev, labels_dev, batch_size=batch_size), device)
    ldr_s, ldr_n, ldr_look = time_epoch(
        loader_batches(images, labels, device, batch_size=batch_size, num_workers=num_workers), device
    )
    _check_same_look(dev_look, ldr_look)
    rows = [
        {"variant": "device-resident", "images/s": round(dev_n / dev_s, 1), "epoch s": round(dev_s, 3)},
        {"variant": f"DataLoader ({num_workers} workers)", "images/s": round(ldr_n / ldr_s, 1),
         "epoch s": round(ldr_s, 3)},
    ]
    h, w = images.shape[-2:]
    return Measurement(
        name="ar input path: device-resident vs DataLoader",
        rows=rows,
        ratio=rows[0]["images/s"] / rows[1]["images/s"],
        ratio_label="images/s device-resident / DataLoader",
        target="",
        notes=[
            f"one epoch of {len(labels)} {name} train images ({h}x{w} grey) -> {CHANNELS}x{SIZE}x{SIZE} float "
            f"batches of {batch_size} on {device}; nothing trained on them",
            "device-resident: uint8 on the device, seeded randperm, index, .float().div_(255), batched "
            "bench.methods.inputs.fit (antialiased bilinear)",
            "DataLoader: PIL image per sample, torchvision v2 Resize(antialias) + Grayscale(3) + ToImage + ToDtype, "
            f"shuffle, num_workers={num_workers}, pin_memory={device.type == 'cuda'}, persistent_workers=False, "
            "each batch moved to the device",
            "epoch time includes DataLoader worker start-up: with persistent_workers=False every epoch pays it",
            f"the one-off upload of the uint8 set to {device} took {upload_s:.3f} s and is not in the epoch time",
            f"both paths checked: first batch {dev_look['shape']} {dev_look['dtype']}, values in [0, 1]",
            load_note(),
        ],
    )
