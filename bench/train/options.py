"""What a caller gives the trainer besides the cells (`TrainContext`, `TrainOptions`) and the errors it raises."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class TrainOptions:
    cache_features: bool = True  # head-only methods: backbone features computed once, not every epoch
    compile: bool = False  # torch.compile the backbone's body; compile time is reported apart
    # False for a sweep's trials: they are selected on validation, and only the chosen config, re-run as a cell,
    # may read the test split
    evaluate_test: bool = True
    # where the images live while training (bench.train.placement): "device" whole, "stream" a batch at a time
    # from host memory or the mapped cache, "auto" by the dataset's size against the free memory
    data_path: str = "auto"


@dataclass(frozen=True)
class TrainContext:
    """Where a pack's inputs are: the datasets (None: the default root), each dependency's cell folder by
    cell_id (a pretrain cell's `model.pt` is an original model), and how to train."""

    data_root: Optional[Path] = None
    dependency_dirs: dict[str, Path] = field(default_factory=dict)
    options: TrainOptions = TrainOptions()


class Diverged(RuntimeError):
    """The loss became NaN or infinite; the cell stops at once (packed cells: only that cell)."""

    def __init__(self, message: str, cell_id: str):
        super().__init__(message)
        self.cell_id = cell_id

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.args[0], self.cell_id))


class MissingOriginal(FileNotFoundError):
    """A cell's original model (made by its pretrain cell) is not on disk."""
