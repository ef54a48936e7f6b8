"""What every backbone is: normalisation it was trained with -> body (penultimate features) -> linear head."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsMissing(FileNotFoundError):
    """Pretrained weights are not on local disk; compute nodes never download."""


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    input_size: int  # height == width the backbone was trained at
    channels: int
    mean: tuple[float, ...]  # normalisation applied to inputs in [0, 1]
    std: tuple[float, ...]
    num_classes: int  # classes of its original task (1000 for ImageNet weights)
    weights: tuple[str, ...] = ()  # named pretrained weights it can load, e.g. ("imagenet",)
    description: str = ""
    # True: `Backbone.text_head(class_names)` builds a head from class names (a CLIP text tower), which the
    # `semantic` label mapping needs; the grid skips `semantic` cells on any other backbone
    text_heads: bool = False


class Backbone(nn.Module):
    """A classifier split where reprogramming needs it.

    Inputs are images in [0, 1] at `input_size`; the backbone applies its own normalisation, so every method
    feeds it what it was trained on (the thesis code did not: caffe-mode preprocessing, then /255).
    """

    def __init__(self, info: BackboneInfo, body: nn.Module, head: nn.Linear):
        super().__init__()
        self.info = info
        self.body = body
        self.head = head
        self.register_buffer("mean", torch.tensor(info.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(info.std).view(1, -1, 1, 1), persistent=False)

    @property
    def feature_dim(self) -> int:
        return self.head.in_features

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def replace_head(self, num_classes: int) -> None:
        self.head = nn.Linear(self.feature_dim, num_classes)

    def text_head(self, class_names: tuple[str, ...]) -> nn.Linear:
        """A head over `features` whose row j scores class_names[j] (CLIP's zero-shot classifier)."""
        raise TypeError(f"backbone {self.info.name!r} cannot build a head from class names; "
                        "a CLIP backbone (clip:ARCH/TAG) can")

    def freeze(self) -> Backbone:
        """Frozen means frozen: no weight gradients, BatchNorm/Dropout in eval mode for good."""
        self.requires_grad_(False)
        self._frozen = True
        self.eval()
        return self

    def train(self, mode: bool = True) -> Backbone:
        # a wrapper's .train() must not move a frozen original's BatchNorm statistics
        return super().train(mode and not getattr(self, "_frozen", False))
