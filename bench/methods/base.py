"""What a method is: declared parameters (validated), a `skip` hook, and `build` -> a trainable model.

Modelled on benchopt's solvers: a method file is a short declaration, not a training loop; the one trainer
(`bench.train`) runs every method.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from bench.data import DatasetInfo
from bench.models import Backbone, BackboneInfo
from bench.registry import Registry


class MethodParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MethodModel(nn.Module):
    """new-task images in [0, 1] at their native size -> new-task logits.

    `learned` is the part that trains: it alone is checkpointed, so a checkpoint of a reprogrammed
    ImageNet model holds the program, not 25M frozen weights.
    """

    learned: nn.Module

    def regularizer(self) -> torch.Tensor | float:
        return 0.0


class Method:
    name: ClassVar[str]
    Params: ClassVar[type[MethodParams]] = MethodParams
    # True: reprograms the trained original model, kept frozen. False: trains a fresh network.
    uses_original: ClassVar[bool] = True
    # True only for `pretrain`: the cell's weights become an original model other cells load
    makes_original: ClassVar[bool] = False

    def skip(
        self, params: MethodParams, backbone: BackboneInfo, num_source: int, task: DatasetInfo
    ) -> tuple[bool, str]:
        """(True, reason) for a combination that makes no sense; such cells are listed, never run."""
        return False, ""

    def build(self, backbone: Backbone, task: DatasetInfo, params: MethodParams, seed: int) -> MethodModel:
        raise NotImplementedError


METHODS: Registry[Method] = Registry("method")


def register_method(cls: type[Method]) -> type[Method]:
    METHODS.register(cls.name, cls())
    return cls
