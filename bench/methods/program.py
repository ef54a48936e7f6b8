"""Elsayed et al.'s adversarial program (thesis 2.2.2): X_adv = place(x) (+|*|-) tanh(W ⊙ M)."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

COMBINE: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "add": torch.add,  # Elsayed et al.
    "multiply": torch.mul,  # thesis Experiment 2
    "subtract": torch.sub,  # thesis Experiment 2
}
MASKS = ("centre", "ones", "border")


class CanvasProgram(nn.Module):
    """A learned `canvas x canvas` program around a new input placed at the canvas centre.

    Works in [-1, 1] image space, where 0 (mid grey) is the empty canvas and tanh's range matches the
    pixels', and returns images in [0, 1] for the backbone (which applies its own normalisation).
    No clamping: Elsayed et al. do not clamp, and clamping would cut the program's gradient.
    """

    def __init__(self, canvas: int, channels: int, input_size: int, mask: str = "centre", combine: str = "add",
                 border: int = 0):
        super().__init__()
        if input_size > canvas:
            raise ValueError(f"input of {input_size}px does not fit on a {canvas}px canvas")
        self.canvas, self.input_size = canvas, input_size
        self.offset = (canvas - input_size) // 2
        self.combine = COMBINE[combine]
        self.W = nn.Parameter(torch.zeros(channels, canvas, canvas))
        M = torch.ones(channels, canvas, canvas)
        if mask == "centre":  # M = 0 where the new input sits
            lo, hi = self.offset, self.offset + input_size
            M[:, lo:hi, lo:hi] = 0
        elif mask == "border":  # M = 1 only within `border` px of the canvas's edges (Bahng et al.'s padding)
            if not 0 < 2 * border < canvas:
                raise ValueError(f"a border of {border}px does not fit a {canvas}px canvas")
            M[:, border:canvas - border, border:canvas - border] = 0
        elif mask != "ones":
            raise ValueError(f"unknown mask {mask!r}; known: {', '.join(MASKS)}")
        self.register_buffer("M", M)

    def program(self, W: torch.Tensor | None = None) -> torch.Tensor:
        """tanh(W ⊙ M); `W` replaces the parameter (a zeroth-order step evaluates perturbed programs)."""
        return torch.tanh((self.W if W is None else W) * self.M)

    def place(self, x01: torch.Tensor) -> torch.Tensor:
        """x in [0, 1] at `input_size` -> canvas in [-1, 1], zero (grey) outside the input."""
        lo = self.offset
        hi = self.canvas - lo - self.input_size
        return F.pad(x01 * 2 - 1, (lo, hi, lo, hi), value=0.0)

    def forward(self, x01: torch.Tensor, W: torch.Tensor | None = None) -> torch.Tensor:
        x_adv = self.combine(self.place(x01), self.program(W))
        return (x_adv + 1) / 2

    def l2(self) -> torch.Tensor:
        return (self.W**2).sum()
