"""Small CNNs for 28x28 / 32x32 original tasks (the thesis's Fashion-MNIST, MNIST and CIFAR-10 models)."""
from __future__ import annotations

from torch import nn

from bench.models.backbone import Backbone, BackboneInfo
from bench.models.registry import register_backbone


def _small_cnn(info: BackboneInfo, width: int = 32, feature_dim: int = 128) -> Backbone:
    # two conv blocks + one hidden fc; no dropout, so a resumed run follows the uninterrupted one exactly
    c = info.channels
    body = nn.Sequential(
        nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(2 * width * 16, feature_dim), nn.ReLU(),
    )
    return Backbone(info, body, nn.Linear(feature_dim, info.num_classes))


@register_backbone(BackboneInfo(
    "smallcnn", input_size=28, channels=1, mean=(0.5,), std=(0.5,), num_classes=10,
    description="2 conv + 2 fc, 28x28x1 (Fashion-MNIST / MNIST originals)",
))
def smallcnn(info: BackboneInfo, weights: str | None) -> Backbone:
    return _small_cnn(info)


@register_backbone(BackboneInfo(
    "smallcnn_rgb", input_size=32, channels=3, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), num_classes=10,
    description="2 conv + 2 fc, 32x32x3 (CIFAR-10 originals)",
))
def smallcnn_rgb(info: BackboneInfo, weights: str | None) -> Backbone:
    return _small_cnn(info, width=48, feature_dim=256)


@register_backbone(BackboneInfo(
    "test_tinycnn", input_size=16, channels=1, mean=(0.5,), std=(0.5,), num_classes=10,
    description="a tiny CNN for fast tests only",
))
def test_tinycnn(info: BackboneInfo, weights: str | None) -> Backbone:
    return _small_cnn(info, width=8, feature_dim=16)
