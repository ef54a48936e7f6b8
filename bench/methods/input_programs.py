"""Input programs: where a new-task image sits on the backbone's canvas and where the learned program may write.

| name | the new input | the program writes |
|---|---|---|
| `canvas` | centred at `input_size` (default: native size, shrunk to fit) | around it (`mask: centre`) or all over |
| `pad` | resized to canvas - 2 x `pad_width` (ILM-VP's expansive prompt, Chen et al. 2023) | the border around it |
| `border` | resized to the whole canvas (Bahng et al. 2022's padding prompt) | a `pad_width` band over its edge |
| `full` | resized to `input_size` (default: the whole canvas) | everywhere, over the input too |

An entry is a class decorated with `@register_input_program`: its `layout` (input size and mask on a canvas),
the `ar` parameters it reads (`takes`: a parameter no program in use takes makes the cell skip) and its own
`skip` rules. A new program may sit here or in any module of bench/methods (found by discovery);
tests/test_contract_input_programs.py checks every entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from bench.data import DatasetInfo
from bench.registry import Registry

# Bahng et al. (2022) prompt a 224px image on a 30px border; on other canvases the same fraction
PAD_FRACTION = 30 / 224
NO_SKIP = (False, "")


@dataclass(frozen=True)
class Layout:
    input_size: int  # the new input's side on the canvas, centred
    mask: str  # bench.methods.program.CanvasProgram's mask: "centre" (around the input), "ones" or "border"
    border: int = 0  # mask "border": the program's width along the canvas's edges


class InputProgram:
    """One way of placing a new input on the canvas; `params` are the method's (`ARParams` or a subclass)."""

    name: ClassVar[str]
    # the program-specific parameters it reads, of `program_parameters()`; the others must stay at their default
    takes: ClassVar[frozenset[str]] = frozenset()

    def layout(self, params: Any, canvas: int, task: DatasetInfo) -> Layout:
        raise NotImplementedError

    def skip(self, params: Any, canvas: int, task: DatasetInfo) -> tuple[bool, str]:
        """(True, reason) for parameters this program cannot use; checked before the general `ar` rules."""
        return NO_SKIP


INPUT_PROGRAMS: Registry[InputProgram] = Registry("input program", package="bench.methods")


def register_input_program(cls: type[InputProgram]) -> type[InputProgram]:
    INPUT_PROGRAMS.register(cls.name, cls(), takes=cls.takes)
    return cls


def program_parameters() -> frozenset[str]:
    """Every parameter some input program takes."""
    return frozenset().union(*(p.takes for _, p in INPUT_PROGRAMS.items()))


def takers(parameter: str) -> list[str]:
    return [name for name, p in INPUT_PROGRAMS.items() if parameter in p.takes]


def own_mask(params: Any) -> tuple[bool, str]:
    if params.mask != "centre":
        return True, f"program: {params.program} sets its own mask; mask applies to program: canvas"
    return NO_SKIP


@register_input_program
class Canvas(InputProgram):
    """Elsayed et al.: the input centred on a program canvas, the program around it (or everywhere)."""

    name = "canvas"
    takes = frozenset({"mask", "input_size"})

    def layout(self, params: Any, canvas: int, task: DatasetInfo) -> Layout:
        return Layout(params.input_size if params.input_size is not None else min(task.size, canvas), params.mask)


class BorderWidth(InputProgram):
    """The part of `pad` and `border` alike: a learned border of `pad_width` px (default: Bahng et al.'s 30/224)."""

    takes = frozenset({"pad_width"})

    def width(self, params: Any, canvas: int) -> int:
        return params.pad_width or max(1, round(canvas * PAD_FRACTION))

    def skip(self, params: Any, canvas: int, task: DatasetInfo) -> tuple[bool, str]:
        if params.input_size is not None:
            return True, (f"program: {self.name} sets the input's size itself: give pad_width, not input_size")
        if own_mask(params)[0]:
            return own_mask(params)
        if canvas - 2 * self.width(params, canvas) < 1:
            return True, f"a border of {params.pad_width} px each side leaves no room on the {canvas}px canvas"
        return NO_SKIP


@register_input_program
class Pad(BorderWidth):
    """ILM-VP's expansive visual prompt (Chen et al. 2023): the input shrunk inside a learned border of `pad_width`
    pixels, which never writes on it."""

    name = "pad"

    def layout(self, params: Any, canvas: int, task: DatasetInfo) -> Layout:
        return Layout(canvas - 2 * self.width(params, canvas), "centre")


@register_input_program
class Border(BorderWidth):
    """Bahng et al. (2022)'s padding prompt: the input resized to the whole canvas and a learned `pad_width` border
    added over its edge (their PadPrompter: 30 px at 224)."""

    name = "border"

    def layout(self, params: Any, canvas: int, task: DatasetInfo) -> Layout:
        return Layout(canvas, "border", self.width(params, canvas))


@register_input_program
class Full(InputProgram):
    """A program over the whole image, the input included (mask of ones), the input at `input_size`."""

    name = "full"
    takes = frozenset({"input_size"})

    def layout(self, params: Any, canvas: int, task: DatasetInfo) -> Layout:
        return Layout(params.input_size or canvas, "ones")

    def skip(self, params: Any, canvas: int, task: DatasetInfo) -> tuple[bool, str]:
        return own_mask(params)
