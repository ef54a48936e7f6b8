"""The contract every registered input program meets, parametrised over `INPUT_PROGRAMS`: its layout fits the
canvas, the program it builds gives the backbone a canvas-sized image, its mask respects the layout (the input
sits centred at the layout's size; `centre`: the program writes nowhere on it; `border`: only along the edges),
and a parameter it does not read makes the cell skip instead of being silently ignored."""
from __future__ import annotations

import pytest
import torch

from bench.data import DatasetInfo, dataset_info
from bench.methods import METHODS
from bench.methods.ar import ARParams, ar_skip, build_program, layout
from bench.methods.input_programs import INPUT_PROGRAMS, Layout, program_parameters
from bench.models import backbone_info, create_backbone

NAMES = INPUT_PROGRAMS.names()
# (backbone, task): grey and RGB canvases, an input smaller than the canvas and one larger
SETTINGS = [("test_tinycnn", "digits"), ("smallcnn", "digits"), ("smallcnn_rgb", "squares")]
# a value other than the default for every parameter some program reads
OTHER_VALUE = {"mask": "ones", "input_size": 6, "pad_width": 3}


def centred(canvas: int, size: int) -> torch.Tensor:
    inside = torch.zeros(canvas, canvas, dtype=torch.bool)
    lo = (canvas - size) // 2
    inside[lo:lo + size, lo:lo + size] = True
    return inside


def test_the_shipped_programs_are_registered():
    assert {"canvas", "pad", "border", "full"} <= set(NAMES) and ARParams().program in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_declares_the_parameters_it_reads(name):
    program = INPUT_PROGRAMS.get(name)
    assert program.name == name and program.takes <= set(ARParams.model_fields)
    assert INPUT_PROGRAMS.metadata(name)["takes"] == program.takes
    assert set(OTHER_VALUE) >= program_parameters(), "give the contract a non-default value for a new parameter"


@pytest.mark.parametrize("backbone, task", SETTINGS)
@pytest.mark.parametrize("name", NAMES)
def test_layout_fits_the_canvas_and_the_mask_respects_it(name, backbone, task):
    info, new_task = backbone_info(backbone), dataset_info(task)
    params = ARParams(program=name, **({"input_size": 12} if "input_size" in INPUT_PROGRAMS.get(name).takes else {}))
    skip, why = ar_skip(params, info, info.num_classes, new_task)
    assert isinstance(skip, bool) and isinstance(why, str) and (why != "") == skip
    lay = layout(params, info.input_size, new_task)
    assert isinstance(lay, Layout) and lay.mask in ("centre", "ones", "border")
    if skip:
        return
    canvas = info.input_size
    assert 1 <= lay.input_size <= canvas
    program = build_program(params, info, new_task)
    assert program.input_size == lay.input_size and program.M.shape == (info.channels, canvas, canvas)
    inside = centred(canvas, lay.input_size)
    if lay.mask == "centre":  # the program writes exactly around the input
        assert torch.equal(program.M[0].bool(), ~inside)
    elif lay.mask == "border":  # the program writes exactly on a band of `border` px along the edges
        assert 0 < lay.border and 2 * lay.border < canvas
        assert torch.equal(program.M[0].bool(), ~centred(canvas, canvas - 2 * lay.border))
    else:
        assert bool(program.M.all())
    x = torch.rand(2, info.channels, lay.input_size, lay.input_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = program(x)  # a zero program: the input shows where the layout puts it
    assert out.shape == (2, info.channels, canvas, canvas)
    torch.testing.assert_close(out[:, :, inside].view(2, info.channels, lay.input_size, lay.input_size), x)


@pytest.mark.parametrize("name", NAMES)
def test_runs_at_its_defaults_on_a_tiny_backbone(name):
    ar = METHODS.get("ar")
    params = ar.Params(program=name)
    assert ar.skip(params, backbone_info("smallcnn"), 10, dataset_info("digits")) == (False, "")
    model = ar.build(create_backbone("test_tinycnn"), dataset_info("digits"), params, 0)
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 10)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("parameter", sorted(OTHER_VALUE))
def test_a_parameter_it_does_not_read_makes_the_cell_skip(name, parameter):
    if parameter in INPUT_PROGRAMS.get(name).takes or parameter not in program_parameters():
        return
    task = DatasetInfo("t", 10, 1, 8, "made up for a test")
    params = ARParams(program=name, **{parameter: OTHER_VALUE[parameter]})
    skip, why = ar_skip(params, backbone_info("smallcnn"), 10, task)
    assert skip and parameter in why


def test_ar_accepts_every_registered_program_and_an_unknown_one_lists_them():
    from pydantic import ValidationError

    assert [ARParams(program=n).program for n in NAMES] == NAMES
    with pytest.raises(ValidationError, match=f"unknown input program 'bogus'; known: {', '.join(NAMES)}"):
        ARParams(program="bogus")
