"""Names a reader of a figure understands, in place of the registry ids the tables and files keep: `Elsayed AR`
for `ar`, `Fashion-MNIST` for `fashion_mnist`, `small CNN trained on Fashion-MNIST` for `fashion_mnist/smallcnn`.

A method's name is its registry `label`; of its parameters only those that differ between the setups one figure
shows are added (`Elsayed AR (mask none)`), since a parameter every point shares tells none of them apart.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from bench.grid import Cell
from bench.methods import METHODS

# dataset ids as papers write them; an id not here is shown with its underscores as spaces
DATASETS = {
    "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "digits": "digits (8×8)", "squares": "counting squares",
    "cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "svhn": "SVHN", "stl10": "STL-10", "gtsrb": "GTSRB",
    "eurosat": "EuroSAT", "dtd": "DTD", "flowers102": "Flowers-102", "food101": "Food-101",
    "oxford_pets": "Oxford Pets", "stanford_cars": "Stanford Cars", "sun397": "SUN397", "ucf101": "UCF-101",
    "caltech101": "Caltech-101", "caltech101_thesis": "Caltech-101 (97 classes)", "caltech256": "Caltech-256",
    "caltech256_reduced": "Caltech-256 (reduced)",
    "imagenet": "ImageNet", "isic": "ISIC 2018", "fmow": "FMoW",
}
BACKBONES = {"smallcnn": "small CNN", "test_tinycnn": "tiny CNN"}
# a class subset's suffix (`mnist_01`, `squares_1to5`): the classes it keeps
SUBSET = re.compile(r"^(?P<base>.+)_(?:(?P<a>\d)(?P<b>\d)|(?P<lo>\d+)to(?P<hi>\d+))$")


def dataset_title(name: str) -> str:
    """`mnist_01` -> `MNIST 0/1`; `squares_1to5` -> `counting squares 1-5`; a joint task `a+b` -> `A + B`."""
    if "+" in name:
        return " + ".join(dataset_title(part) for part in name.split("+"))
    if name in DATASETS:
        return DATASETS[name]
    match = SUBSET.match(name)
    if match and match["base"] in DATASETS:
        classes = f"{match['a']}/{match['b']}" if match["a"] else f"{match['lo']}-{match['hi']}"
        return f"{DATASETS[match['base']]} {classes}"
    return name.replace("_", " ")


def backbone_title(name: str) -> str:
    return BACKBONES.get(name, name)


def original_title(cell: Cell) -> str:
    """What a cell starts from, spelled out: `small CNN trained on Fashion-MNIST`, `small CNN, random init`."""
    if cell.makes_original:
        return f"{backbone_title(cell.backbone)} trained on {dataset_title(cell.task)}"
    if cell.trained_on:
        return f"{backbone_title(cell.backbone)} trained on {dataset_title(cell.trained_on)}"
    return f"{backbone_title(cell.backbone)}, random init"


def method_title(cell: Cell) -> str:
    method = METHODS.get(cell.method)
    return method.label or cell.method.replace("_", " ")


def _parameters(cell: Cell) -> dict:
    return {**{k: v for k, v in cell.spec["method"].items() if k != "name"}, **cell.spec["hparams"]}


def method_titles(cells: Iterable[Cell]) -> dict[str, str]:
    """cell_id -> the method's title with the parameters that tell this figure's setups of one method apart."""
    cells = list(cells)
    by_method: dict[str, list[Cell]] = {}
    for c in cells:
        by_method.setdefault(c.method, []).append(c)
    titles = {}
    for same in by_method.values():
        keys = sorted({k for c in same for k in _parameters(c)})
        varying = [k for k in keys if len({repr(_parameters(c).get(k)) for c in same}) > 1]
        for c in same:
            params = _parameters(c)
            shown = ", ".join(f"{k.replace('_', ' ')} {params.get(k)}" for k in varying)
            titles[c.cell_id] = method_title(c) + (f" ({shown})" if shown else "")
    return titles


def chance_accuracy(task: str) -> float | None:
    """The accuracy in % of guessing uniformly at random, 100 / classes (None for a task this install lacks)."""
    from bench.data import dataset_info

    try:
        classes = dataset_info(task).num_classes
    except Exception:  # noqa: BLE001 - a task this install does not know: no chance line rather than no figure
        return None
    return 100.0 / classes if classes else None
