"""The thesis's from-scratch baseline of Table 5.1: a 4-conv-block Keras CNN at 224x224, rebuilt in PyTorch.

Kloberdanz (2020), ekloberdanz/Thesis_Adversarial_Reprogramming, FinalCode/Imagenet_Caltech101_transfer_learning.ipynb
("# build the network", the Sequential model trained with Adam, batch 128, 10 epochs):

    Conv2D(32, 3x3) relu MaxPool(2)   Conv2D(32, 3x3) relu MaxPool(2)   Dropout(0.25)
    Conv2D(32, 3x3) relu MaxPool(2)   Conv2D(32, 3x3) relu MaxPool(2)   Dropout(0.25)
    Flatten  Dense(256) relu  Dropout(0.5)  Dense(num_classes) softmax

Keras's defaults are kept where they change the shapes or the count: 'valid' padding (224 -> 222 -> 111 -> 109 ->
54 -> 52 -> 26 -> 24 -> 12, so Flatten gives 12 x 12 x 32 = 4,608), floor pooling, biases on every layer,
Glorot-uniform weights and zero biases. The softmax is the loss's (cross-entropy on logits). 1,233,473 parameters
for its 97 Caltech-101 classes, 1,275,107 for Caltech-256's 257 + 2 (tests/test_thesis_cnn.py has the arithmetic).
The thesis fed it caffe-mode preprocessing then /255; here it gets the [0, 1] image (mean 0, std 1), the /255 part.
"""
from __future__ import annotations

from torch import nn

from bench.models.backbone import Backbone, BackboneInfo
from bench.models.registry import register_backbone

INPUT_SIZE = 224
WIDTH = 32  # filters of every conv layer
HIDDEN = 256  # the Dense layer before the classifier


def _conv_block(c_in: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, WIDTH, 3), nn.ReLU(), nn.MaxPool2d(2)]


MIN_INPUT = 46  # the smallest side that leaves 1x1 after four conv + pool blocks: 46 -> 44 -> 22 -> 20 -> 10 -> ...


def _flat_size(size: int) -> int:
    if size < MIN_INPUT:
        raise ValueError(f"thesis_cnn needs input_size >= {MIN_INPUT} (four 3x3 conv + 2x2 pool blocks), "
                         f"got {size}; use input_size: 224 as the thesis did")
    for _ in range(4):  # each block: a 3x3 'valid' conv (-2), then a 2x2 pool (floor of half)
        size = (size - 2) // 2
    return WIDTH * size * size


def _glorot(module: nn.Module) -> None:
    # Keras's initialisers, so a from-scratch run starts where the thesis's did (in distribution)
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


class _KerasInitialised(Backbone):
    def replace_head(self, num_classes: int) -> None:
        super().replace_head(num_classes)  # the new task's head, initialised like the rest
        _glorot(self.head)


@register_backbone(BackboneInfo(
    "thesis_cnn", input_size=INPUT_SIZE, channels=3, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), num_classes=97,
    description="the thesis's Table 5.1 from-scratch CNN: 4 conv blocks (32 filters, 3x3) + Dense 256, dropout, "
                "224x224x3",
))
def thesis_cnn(info: BackboneInfo, weights: str | None) -> Backbone:
    body = nn.Sequential(
        *_conv_block(info.channels), *_conv_block(WIDTH), nn.Dropout(0.25),
        *_conv_block(WIDTH), *_conv_block(WIDTH), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(_flat_size(info.input_size), HIDDEN), nn.ReLU(), nn.Dropout(0.5),
    )
    model = _KerasInitialised(info, body, nn.Linear(HIDDEN, info.num_classes))
    model.apply(_glorot)
    return model
