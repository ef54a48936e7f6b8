"""The thesis's Table 5.1 from-scratch CNN (bench/models/thesis_cnn.py): its layout and its parameter count."""
from __future__ import annotations

import torch
from torch import nn

from bench.models import backbone_info, create_backbone, list_backbones


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _thesis_count(num_classes: int) -> int:
    """Keras's model.summary(), layer by layer (weights + biases), for 224x224x3 inputs."""
    conv1 = 3 * 3 * 3 * 32 + 32  # 896: 3x3 kernels over 3 channels, 32 filters
    conv2 = conv3 = conv4 = 3 * 3 * 32 * 32 + 32  # 9,248 each
    # 'valid' 3x3 conv then 2x2 pool, four times: 224 -> 222 -> 111 -> 109 -> 54 -> 52 -> 26 -> 24 -> 12
    flat = 12 * 12 * 32  # 4,608
    dense = flat * 256 + 256  # 1,179,904
    out = 256 * num_classes + num_classes  # 257 per class
    return conv1 + conv2 + conv3 + conv4 + dense + out


def test_the_arithmetic_matches_the_thesis_summaries():
    # 97 classes: FinalCode/Imagenet_Caltech101_transfer_learning.ipynb prints "Total params: 1,233,473"
    assert _thesis_count(97) == 896 + 3 * 9_248 + 1_179_904 + 24_929 == 1_233_473
    # 257 Caltech-256 classes + 2, as the thesis's Caltech-256 run had: 1,275,107
    assert _thesis_count(259) == 896 + 3 * 9_248 + 1_179_904 + 66_563 == 1_275_107


def test_parameter_count_and_forward_shape():
    assert "thesis_cnn" in list_backbones()
    info = backbone_info("thesis_cnn")
    assert (info.input_size, info.channels, info.num_classes) == (224, 3, 97)
    model = create_backbone("thesis_cnn", num_classes=259)
    assert _count(model) == _thesis_count(259) == 1_275_107
    assert _count(create_backbone("thesis_cnn")) == _thesis_count(97) == 1_233_473
    assert _count(create_backbone("thesis_cnn", num_classes=257)) == _thesis_count(257) == 1_274_593
    model.eval()
    x = torch.rand(2, 3, 224, 224)
    assert model.features(x).shape == (2, 256)
    assert model(x).shape == (2, 259)
    dropouts = [m.p for m in model.body if isinstance(m, nn.Dropout)]
    assert dropouts == [0.25, 0.25, 0.5]
    assert [m.out_channels for m in model.body if isinstance(m, nn.Conv2d)] == [32, 32, 32, 32]


def test_keras_initialisation_also_for_a_replaced_head():
    torch.manual_seed(0)
    model = create_backbone("thesis_cnn", num_classes=10)
    bound = (6 / (256 + 10)) ** 0.5  # Glorot uniform: U(-sqrt(6 / (fan_in + fan_out)), +...)
    assert model.head.weight.abs().max() <= bound and model.head.weight.abs().max() > 0.9 * bound
    assert torch.count_nonzero(model.head.bias) == 0
    first = model.body[0]
    assert torch.count_nonzero(first.bias) == 0 and first.weight.abs().max() <= (6 / (27 + 288)) ** 0.5


def test_too_small_an_input_is_one_clear_error():
    import pytest

    assert _count(create_backbone("thesis_cnn", input_size=46, num_classes=2)) == (
        896 + 3 * 9_248 + (1 * 1 * 32) * 256 + 256 + 2 * 257)  # 46 px leaves 1x1x32 to flatten
    with pytest.raises(ValueError, match=r"thesis_cnn needs input_size >= 46.*got 45"):
        create_backbone("thesis_cnn", input_size=45)
