"""Bringing a new task's images to what a backbone accepts: channels, then size. Done per batch, on device."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, channels, -1, -1)  # grey into RGB: replicate, as the thesis did
    if channels == 1:
        return x.mean(dim=1, keepdim=True)
    raise ValueError(f"cannot map {x.shape[1]} channels onto {channels}")


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    # antialias so that shrinking (Experiment 2: MNIST 28x28 -> 4x4) averages instead of aliasing
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def fit(x: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    if x.shape[1] < channels:  # resize the one grey channel, then replicate it: a third of the resize work
        return match_channels(resize(x, size), channels)
    return resize(match_channels(x, channels), size)
