"""The math of the methods: canvas program and mask, gradients that reach only what learns, label maps, inputs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.data import DatasetInfo, dataset_info
from bench.methods import METHODS, MethodParams, list_methods
from bench.methods.ar import ARParams
from bench.methods.inputs import fit, match_channels, resize
from bench.methods.label_maps import LABEL_MAPS
from bench.methods.program import CanvasProgram
from bench.models import backbone_info, create_backbone

DIGITS = dataset_info("digits")  # 10 classes, 1 x 8 x 8


def task(num_classes: int = 10, channels: int = 1, size: int = 8) -> DatasetInfo:
    return DatasetInfo("t", num_classes, channels, size, "made up for a test")


def images(n: int, channels: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def region(canvas: int, size: int) -> torch.Tensor:
    """Boolean (canvas, canvas): where a centred `size` input sits, computed independently of the code."""
    inside = torch.zeros(canvas, canvas, dtype=torch.bool)
    lo = (canvas - size) // 2
    inside[lo:lo + size, lo:lo + size] = True
    return inside


def original(name: str = "smallcnn", seed: int = 0):
    torch.manual_seed(seed)
    return create_backbone(name)


def build(method: str, backbone, info: DatasetInfo = DIGITS, seed: int = 0, **params):
    m = METHODS.get(method)
    return m.build(backbone, info, m.Params(**params), seed)


def test_methods_registered():
    assert list_methods() == ["ar", "blackbox", "finetune", "linear_probe", "pretrain", "scratch"]
    assert METHODS.get("scratch").uses_original is False and METHODS.get("pretrain").makes_original is True
    assert METHODS.get("ar").uses_original and METHODS.get("linear_probe").uses_original


# --------------------------------------------------------------------------- CanvasProgram


@pytest.mark.parametrize(("canvas", "size", "lo"), [(28, 8, 10), (28, 9, 9), (28, 28, 0), (224, 28, 98), (5, 2, 1)])
def test_centre_mask_is_zero_exactly_over_the_input(canvas, size, lo):
    prog = CanvasProgram(canvas, channels=3, input_size=size)
    assert prog.offset == lo
    assert prog.M.shape == (3, canvas, canvas)
    expected = (~region(canvas, size)).float()
    for c in range(3):
        assert torch.equal(prog.M[c], expected)
    assert int((prog.M[0] == 0).sum()) == size * size
    # the gap before the input is lo pixels, after it canvas - lo - size (one more when the difference is odd)
    row = prog.M[0, lo]
    assert row[:lo].eq(1).all() and row[lo:lo + size].eq(0).all() and row[lo + size:].eq(1).all()


def test_mask_ones_covers_everything():
    prog = CanvasProgram(28, channels=1, input_size=8, mask="ones")
    assert torch.equal(prog.M, torch.ones(1, 28, 28))


def test_unknown_mask_and_oversized_input_are_refused():
    with pytest.raises(ValueError, match="unknown mask 'center'"):
        CanvasProgram(28, 1, 8, mask="center")
    with pytest.raises(ValueError, match="29px"):
        CanvasProgram(28, 1, 29)


@pytest.mark.parametrize("size", [8, 9])
@pytest.mark.parametrize("combine", ["add", "subtract"])
def test_zero_program_shows_the_input_on_mid_grey(size, combine):
    prog = CanvasProgram(28, channels=1, input_size=size, combine=combine)
    x = images(4, 1, size)
    with torch.no_grad():
        out = prog(x)
    inside = region(28, size)
    assert out.shape == (4, 1, 28, 28)
    lo = (28 - size) // 2
    torch.testing.assert_close(out[..., lo:lo + size, lo:lo + size], x)
    assert torch.equal(out[:, :, ~inside], torch.full_like(out[:, :, ~inside], 0.5))


def test_place_puts_the_input_in_minus_one_one_on_a_zero_canvas():
    prog = CanvasProgram(10, channels=2, input_size=3)
    x = images(2, 2, 3)
    placed = prog.place(x)
    expected = torch.zeros(2, 2, 10, 10)
    expected[..., 3:6, 3:6] = 2 * x - 1
    torch.testing.assert_close(placed, expected)


@pytest.mark.parametrize("mask", ["centre", "ones"])
@pytest.mark.parametrize(("combine", "op"), [("add", torch.add), ("multiply", torch.mul), ("subtract", torch.sub)])
def test_program_combines_as_the_formula_says(combine, op, mask):
    canvas, size = 12, 5
    prog = CanvasProgram(canvas, channels=3, input_size=size, mask=mask, combine=combine)
    with torch.no_grad():
        prog.W.copy_(torch.randn(3, canvas, canvas, generator=torch.Generator().manual_seed(1)))
    x = images(2, 3, size)
    M = torch.ones(3, canvas, canvas)
    if mask == "centre":
        M[:, region(canvas, size)] = 0
    placed = torch.zeros(2, 3, canvas, canvas)
    placed[..., 3:8, 3:8] = 2 * x - 1
    expected = (op(placed, torch.tanh(prog.W.detach() * M)) + 1) / 2
    with torch.no_grad():
        torch.testing.assert_close(prog(x), expected)
        torch.testing.assert_close(prog.program(), torch.tanh(prog.W * M))


def test_program_is_bounded_by_tanh():
    prog = CanvasProgram(16, channels=1, input_size=4, mask="ones")
    with torch.no_grad():
        prog.W.copy_(torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(2)))
        p = prog.program()
        assert (p > -1).all() and (p < 1).all()
        prog.W.mul_(1000)  # saturated: float32 tanh reaches +-1 exactly, never beyond
        p = prog.program()
        assert p.abs().max() <= 1 and p.abs().max() > 0.999


def test_l2_is_the_sum_of_squares_of_w():
    prog = CanvasProgram(6, channels=1, input_size=2)
    with torch.no_grad():
        prog.W.copy_(torch.arange(36.0).view(1, 6, 6))
    assert prog.l2().item() == pytest.approx(sum(i * i for i in range(36)))


# --------------------------------------------------------------------------- ar: what trains and what does not


def test_ar_trains_the_program_only():
    backbone = original()
    model = build("ar", backbone, lam=0.01)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["learned.W"]
    assert model.learned.canvas == 28 and model.learned.input_size == 8  # digits native 8px on the 28px canvas
    model.train()
    out = model(images(8, 1, 8))
    assert out.shape == (8, 10)
    F.cross_entropy(out, torch.arange(8) % 10).backward()
    grad = model.learned.W.grad
    inside = region(28, 8)
    assert torch.equal(grad[:, inside], torch.zeros_like(grad[:, inside]))
    outside = grad[:, ~inside]
    assert (outside != 0).float().mean() > 0.5  # max pooling hides some pixels, most must learn
    assert all(p.grad is None for p in model.backbone.parameters())


def test_ar_backbone_stays_in_eval_mode_and_its_batchnorm_statistics_never_move():
    backbone = original()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    model = build("ar", backbone)
    model.train()
    assert model.training and model.learned.training
    assert not any(m.training for m in model.backbone.modules())
    with torch.no_grad():
        model.learned.W.normal_()  # a non-trivial program, so the backbone sees something new
    model(images(16, 1, 8)).sum().backward()
    after = backbone.state_dict()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key


def test_ar_regularizer_is_lambda_times_squared_norm():
    model = build("ar", original(), lam=0.25)
    with torch.no_grad():
        model.learned.W.copy_(torch.randn(1, 28, 28, generator=torch.Generator().manual_seed(3)))
    expected = 0.25 * (model.learned.W.detach() ** 2).sum()
    torch.testing.assert_close(model.regularizer().detach(), expected)
    assert build("ar", original(), lam=0.0).regularizer().item() == 0.0


def test_ar_output_reads_the_first_k_source_logits():
    backbone = original().eval()
    model = build("ar", backbone, info=task(num_classes=4, size=8), input_size=6, mask="ones")
    x = images(3, 1, 8)
    with torch.no_grad():
        canvas = model.learned(resize(x, 6))
        torch.testing.assert_close(model(x), backbone(canvas)[:, :4])


def test_ar_adapts_rgb_and_size_to_a_grey_original():
    model = build("ar", original(), info=task(num_classes=3, channels=3, size=32), input_size=12)
    assert model.learned.input_size == 12
    out = model(images(2, 3, 32))
    assert out.shape == (2, 3)


# --------------------------------------------------------------------------- label maps


def test_first_k_picks_the_first_k_logits():
    logits = torch.randn(5, 10)
    torch.testing.assert_close(LABEL_MAPS.get("first_k")(10, 4, 0)(logits), logits[:, :4])
    torch.testing.assert_close(LABEL_MAPS.get("first_k")(10, 4, 7)(logits), logits[:, :4])  # seed-free


def test_random_map_is_injective_and_seeded():
    maps = {seed: LABEL_MAPS.get("random")(1000, 10, seed).index for seed in (0, 1)}
    for index in maps.values():
        assert index.shape == (10,)
        assert len(set(index.tolist())) == 10
        assert 0 <= int(index.min()) and int(index.max()) < 1000
    assert torch.equal(maps[0], LABEL_MAPS.get("random")(1000, 10, 0).index)
    assert not torch.equal(maps[0], maps[1])
    logits = torch.randn(3, 1000)
    torch.testing.assert_close(LABEL_MAPS.get("random")(1000, 10, 0)(logits), logits[:, maps[0]])
    full = LABEL_MAPS.get("random")(10, 10, 5).index  # k == num_source: a permutation
    assert sorted(full.tolist()) == list(range(10))


def test_ar_random_label_map_follows_the_cell_seed():
    a = build("ar", original(), seed=3, label_map="random").label_map.index
    b = build("ar", original(), seed=3, label_map="random").label_map.index
    c = build("ar", original(), seed=4, label_map="random").label_map.index
    assert torch.equal(a, b) and not torch.equal(a, c)


# --------------------------------------------------------------------------- linear_probe


def test_linear_probe_trains_a_new_head_on_frozen_features():
    backbone = original()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    model = build("linear_probe", backbone, info=task(num_classes=3, size=8))
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(trainable) == 2 and all(any(p is q for q in model.learned.parameters()) for p in trainable)
    assert model.learned.in_features == backbone.feature_dim and model.learned.out_features == 3

    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, weight_decay=0.1)  # all params: frozen ones must hold
    model.train()
    assert not any(m.training for m in model.backbone.modules())
    head_before = model.learned.weight.detach().clone()
    out = model(images(6, 1, 8))
    assert out.shape == (6, 3)
    F.cross_entropy(out, torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    assert all(p.grad is None for p in backbone.parameters())
    optimizer.step()
    assert not torch.equal(model.learned.weight, head_before)
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_linear_probe_reads_the_backbones_features():
    backbone = original().eval()
    model = build("linear_probe", backbone, info=task(num_classes=2, channels=3, size=32))
    x = images(2, 3, 32)
    with torch.no_grad():
        expected = model.learned(backbone.features(fit(x, 1, 28)))
        torch.testing.assert_close(model(x), expected)


def test_linear_probe_on_logits_trains_on_the_backbones_class_scores():
    # features: logits -- the thesis's Keras MobileNet head sat on layers[-2], the 1000 pre-softmax logits
    backbone = original().eval()  # smallcnn: 128 pooled features, 10 original classes
    default = build("linear_probe", backbone, info=task(num_classes=2, channels=3, size=32))
    model = build("linear_probe", backbone, info=task(num_classes=2, channels=3, size=32), features="logits")
    assert default.learned.in_features == backbone.feature_dim == 128
    assert model.learned.in_features == backbone.num_classes == 10
    x = images(2, 3, 32)
    with torch.no_grad():
        logits = backbone(fit(x, 1, 28))
        torch.testing.assert_close(model.frozen(model.encode(x)), logits)
        torch.testing.assert_close(model(x), model.learned(logits))
    assert [p for p in model.parameters() if p.requires_grad] == list(model.learned.parameters())
    # the default is left out of the spec, so cells made before the option keep their cell_id
    params = METHODS.get("linear_probe").Params
    assert params().model_dump() == {} and params(features="logits").model_dump() == {"features": "logits"}
    with pytest.raises(ValueError, match="penultimate' or 'logits"):
        params(features="pooled")


# --------------------------------------------------------------------------- scratch


def test_scratch_trains_every_parameter_and_adapts_the_input():
    torch.manual_seed(0)
    backbone = create_backbone("smallcnn", num_classes=3)
    model = build("scratch", backbone, info=task(num_classes=3, channels=3, size=32))
    assert model.learned is backbone
    params = list(model.parameters())
    assert params and all(p.requires_grad for p in params)
    model.train()
    out = model(images(4, 3, 32))  # RGB 32px into a grey 28px network
    assert out.shape == (4, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in params)
    assert METHODS.get("scratch").Params is MethodParams


# --------------------------------------------------------------------------- inputs


def test_grey_to_rgb_replicates():
    x = images(2, 1, 5)
    y = match_channels(x, 3)
    assert y.shape == (2, 3, 5, 5)
    for c in range(3):
        assert torch.equal(y[:, c], x[:, 0])


def test_rgb_to_grey_averages():
    x = images(2, 3, 5)
    y = match_channels(x, 1)
    assert y.shape == (2, 1, 5, 5)
    torch.testing.assert_close(y[:, 0], (x[:, 0] + x[:, 1] + x[:, 2]) / 3)


def test_match_channels_leaves_matching_tensors_alone_and_refuses_the_impossible():
    x = images(1, 3, 4)
    assert match_channels(x, 3) is x
    with pytest.raises(ValueError, match="cannot map 2 channels onto 3"):
        match_channels(images(1, 2, 4), 3)


def test_resize():
    x = images(2, 1, 8)
    assert resize(x, 8) is x
    assert resize(x, 16).shape == (2, 1, 16, 16)
    assert resize(x, 4).shape == (2, 1, 4, 4)
    flat = torch.full((1, 1, 28, 28), 0.25)
    torch.testing.assert_close(resize(flat, 4), torch.full((1, 1, 4, 4), 0.25))  # antialiased: a mean is kept
    small = resize(images(1, 1, 28), 4)
    assert 0 <= float(small.min()) and float(small.max()) <= 1


def test_fit_does_channels_then_size():
    x = images(3, 3, 32)
    y = fit(x, 1, 28)
    assert y.shape == (3, 1, 28, 28)
    torch.testing.assert_close(y, resize(x.mean(dim=1, keepdim=True), 28))
    z = images(1, 1, 28)
    assert fit(z, 1, 28) is z


# --------------------------------------------------------------------------- the ar skip hook

AR = METHODS.get("ar")
SMALLCNN = backbone_info("smallcnn")  # 28px canvas, 10 source classes


@pytest.mark.parametrize(("params", "info", "num_source", "reason"), [
    (ARParams(combine="multiply"), DIGITS, 10, "multiplies the input by 0"),
    (ARParams(), dataset_info("cifar100"), 10, "needs 100 source classes, the original has 10"),
    (ARParams(), task(num_classes=11), 10, "needs 11 source classes"),
    (ARParams(), task(size=28), 10, "fills the 28px canvas"),
    (ARParams(), dataset_info("squares"), 10, "fills the 28px canvas"),  # 36px, shrunk to the canvas
    (ARParams(input_size=28), DIGITS, 10, "fills the 28px canvas"),
    (ARParams(input_size=29), DIGITS, 10, "input_size 29 exceeds the 28px canvas"),
])
def test_ar_skips_what_makes_no_sense(params, info, num_source, reason):
    skip, why = AR.skip(params, SMALLCNN, num_source, info)
    assert skip is True
    assert reason in why


@pytest.mark.parametrize(("params", "info", "num_source"), [
    (ARParams(), DIGITS, 10),
    (ARParams(combine="multiply", mask="ones"), DIGITS, 10),
    (ARParams(mask="ones"), task(size=28), 10),  # fills the canvas, but the program covers it
    (ARParams(input_size=16), dataset_info("squares"), 10),
    (ARParams(), task(num_classes=10), 10),  # exactly as many classes as the source
    (ARParams(label_map="random", input_size=16), dataset_info("cifar100"), 1000),
])
def test_ar_runs_sane_configurations(params, info, num_source):
    assert AR.skip(params, SMALLCNN, num_source, info) == (False, "")


def test_other_methods_never_skip():
    for name in ("linear_probe", "scratch", "pretrain"):
        assert METHODS.get(name).skip(MethodParams(), SMALLCNN, 2, dataset_info("cifar100")) == (False, "")
