"""The learning rate of each epoch: constant, or MultiStepLR's steps (`lr_milestones`, `lr_gamma`).

Worked out from the epoch alone, not kept in a scheduler's state, so a cell resumed from its checkpoint trains at
the lr it would have had without the interruption."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def lr_at(hp: Mapping[str, Any], epoch: int) -> float:
    """The lr of 0-based `epoch`: `lr` times `lr_gamma` once per milestone already reached (torch's MultiStepLR
    stepped after each epoch, as ILM-VP steps it)."""
    marks = [int(m) for m in hp.get("lr_milestones", "").split("/") if m]
    return hp["lr"] * hp.get("lr_gamma", 0.1) ** sum(epoch >= m for m in marks)


def set_epoch_lr(members: Iterable[Any], epoch: int) -> None:
    for m in members:
        for group in m.optimizer.param_groups:
            group["lr"] = lr_at(m.hp, epoch)
