"""Joint tasks: `digits_0to4+squares_1to5` is one new task made of several, for one program serving them all.

The first seed's idea (Elsayed et al.'s program is not tied to one task): one W shared by several new tasks
whose label mappings use disjoint source classes, trained on the mixture. A joint task's classes are its parts'
classes one after the other (part 0's classes 0..k0-1, then part 1's, ...), so every injective label mapping
over them (first_k, random, frequency, ...) gives each part source classes of its own. The host knows which
task an image belongs to: only the classes of an image's own part compete (`TaskParts.restrict`, which the
method model applies to the logits its loss and accuracy read: `MethodModel.restrict`), and the accuracy of each
part is reported.

Each part is split exactly as it is alone (same seed and fractions), so a part's test images are the test images
of the single-task cells it is compared with. Parts of different sizes or channels are brought to the largest
once, at load (grey replicated, antialiased bilinear resize, rounded back to uint8), so that the mixture is one
tensor; the method's own resize then applies as for any task.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Optional

import torch
import torch.nn.functional as F

from .types import DatasetInfo, ImageSet, TaskData

SEP = "+"


def is_joint(name: str) -> bool:
    return SEP in name


def parts_of(name: str) -> tuple[str, ...]:
    return tuple(name.split(SEP))


def joint_info(name: str, parts: list[DatasetInfo]) -> DatasetInfo:
    return DatasetInfo(name, sum(p.num_classes for p in parts), max(p.channels for p in parts),
                       max(p.size for p in parts), "joint task: " + "; ".join(f"{p.name} ({p.source})" for p in parts),
                       parts=tuple(p.name for p in parts), class_names=_joint_names(parts))


def _joint_names(parts: list[DatasetInfo]) -> tuple[str, ...]:
    """The parts' class names one after the other, when every part has them (else none)."""
    return sum((p.class_names for p in parts), ()) if all(p.class_names for p in parts) else ()


def class_blocks(info: DatasetInfo, part_infos: list[DatasetInfo]) -> Optional[torch.Tensor]:
    """(num_classes,) the part each class belongs to, for a joint task; None for a single task."""
    if not info.parts:
        return None
    return torch.cat([torch.full((p.num_classes,), i, dtype=torch.long) for i, p in enumerate(part_infos)])


@dataclass(frozen=True)
class TaskParts:
    """A new task's parts as the logits see them: `blocks[c]` is the part of class c (None: a single task, one
    part). What the method model's `restrict` and `evaluation_counts` hooks are fed by."""

    names: tuple[str, ...] = ()
    blocks: Optional[torch.Tensor] = None

    @classmethod
    def of(cls, info: DatasetInfo, part_infos: list[DatasetInfo]) -> TaskParts:
        return cls(tuple(info.parts), class_blocks(info, part_infos))

    @property
    def count(self) -> int:
        return 1 if self.blocks is None else int(self.blocks.max()) + 1

    def to(self, device) -> TaskParts:
        return self if self.blocks is None else TaskParts(self.names, self.blocks.to(device))

    def restrict(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits with every class outside the part of each image's true class at -inf (the host knows which
        task an image is for); unchanged for a single task."""
        if self.blocks is None:
            return logits
        own = self.blocks[y][:, None] == self.blocks[None, :]
        return logits.masked_fill(~own, float("-inf"))

    def part_of(self, y: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(y) if self.blocks is None else self.blocks[y]


def _bring_to(images: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    if images.shape[1] < channels:
        images = images.expand(-1, channels, -1, -1)
    if images.shape[-1] != size:
        x = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        images = x.round().clamp(0, 255).to(torch.uint8)
    return images.contiguous()


def combine(info: DatasetInfo, parts: list[TaskData]) -> TaskData:
    """The parts' splits, side by side: labels offset by the classes of the parts before."""
    offsets = [sum(p.info.num_classes for p in parts[:i]) for i in range(len(parts))]

    def joined(which: str) -> ImageSet:
        sets = [getattr(p, which) for p in parts]
        return ImageSet(torch.cat([_bring_to(s.images, info.channels, info.size) for s in sets]),
                        torch.cat([s.labels + off for s, off in zip(sets, offsets, strict=True)]),
                        torch.cat([s.source_index for s in sets]))

    train, val, test = joined("train"), joined("val"), joined("test")
    fingerprint = hashlib.sha256("|".join(p.split["fingerprint"] for p in parts).encode()).hexdigest()[:16]
    split = {"parts": {p.info.name: p.split for p in parts},
             "sizes": {"train": len(train), "val": len(val), "test": len(test)},
             "source": info.source, "fingerprint": fingerprint}
    # parts whose names are read at load have them only in their TaskData.info
    return TaskData(replace(info, class_names=_joint_names([p.info for p in parts])), train, val, test, split)
