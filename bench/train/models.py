"""Building a pack's models: the original backbone (given weights, or a pretrain cell's `model.pt`), one method
model per cell, and each cell's optimizer."""
from __future__ import annotations

from pathlib import Path

import torch

from bench import checkpoint
from bench.data import DatasetInfo, dataset_info
from bench.files import MODEL
from bench.grid import Cell
from bench.methods import METHODS, MethodModel
from bench.models import Backbone, create_backbone
from bench.train.options import MissingOriginal


def load_original(cell: Cell, dependency_dirs: dict[str, Path]) -> Backbone:
    spec = cell.spec
    name, input_size = spec["backbone"]["name"], spec["backbone"]["input_size"]
    preprocessing = spec["backbone"].get("preprocessing")  # absent: the weights' own
    original = spec["original"]
    if original["pretrain_cell"] is None:
        return create_backbone(name, weights=original["weights"], input_size=input_size, preprocessing=preprocessing)
    source = dependency_dirs.get(original["pretrain_cell"], Path("?")) / MODEL
    if not source.is_file():
        raise MissingOriginal(
            f"original model {original['trained_on']}/{name} (pretrain cell {original['pretrain_cell']}) "
            f"not found at {source}; run the grid without --filter so its pretrain cell runs first"
        )
    backbone = create_backbone(name, num_classes=dataset_info(original["trained_on"]).num_classes,
                               input_size=input_size, preprocessing=preprocessing)
    try:
        checkpoint.verify(source)
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a checksum mismatch, a truncated zip: the same fix
        raise MissingOriginal(f"original model {source} is corrupt ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); delete the folder of its pretrain "
                              f"cell {original['pretrain_cell']} and rerun the grid to train it again") from None
    backbone.load_state_dict(state)
    return backbone


def build_models(cells: list[Cell], task: DatasetInfo, dependency_dirs: dict[str, Path]) -> list[MethodModel]:
    """One model per cell of the loaded `task` (its class names as read from its files); reprogramming cells share
    one original backbone object (loaded once).

    Each cell's own parameters are initialised right after `set_seed(its seed)`, the same whether the cell
    runs alone or packed, so packing does not change what a cell starts from.
    """
    from accelerate.utils import set_seed

    spec = cells[0].spec
    method = METHODS.get(cells[0].method)
    if len(cells) > 1 and not (method.uses_original and method.packs):
        raise ValueError(f"{method.name} trains a whole network or owns its update; its cells cannot be packed")
    if method.uses_original:  # finetune too: its cells never pack, so this copy is its own
        shared = load_original(cells[0], dependency_dirs)
    models = []
    for cell in cells:
        params = method.Params(**{k: v for k, v in cell.spec["method"].items() if k != "name"})
        set_seed(cell.seed)
        backbone = shared if method.uses_original else create_backbone(
            spec["backbone"]["name"], num_classes=task.num_classes, input_size=spec["backbone"]["input_size"],
            preprocessing=spec["backbone"].get("preprocessing"))
        models.append(method.build(backbone, task, params, cell.seed))
    return models


def make_optimizer(hp: dict, params, fused: bool = False) -> torch.optim.Optimizer:
    # fused: one kernel for the whole update on CUDA instead of one per parameter tensor
    extra = {"fused": True} if fused else {}
    if hp["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=hp["lr"], weight_decay=hp["weight_decay"], **extra)
    return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"], **extra)


def count_parameters(model: torch.nn.Module) -> dict:
    return {
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total": sum(p.numel() for p in model.parameters()),
    }
