"""An `originals:` entry resolved for its cells: the backbone spec, the `original` part of a cell's spec, the number
of source classes, and the cell that trains it when it is not ready-made weights. Reads no file: which originals
pretrain on their `fallback:` is given (bench.grid.availability decides it)."""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any, Optional

from bench.data import dataset_info, list_datasets
from bench.grid.cells import Cell, make_cell_id, non_default
from bench.grid.errors import GridError, check_known, validated
from bench.grid.schema import IMAGENET, GridFile, HParams, OriginalSpec, SplitSpec
from bench.methods import METHODS, original_maker
from bench.models import BackboneInfo, backbone_info, list_backbones
from bench.models.registry import check_preprocessing
from bench.registry import UnknownName


@dataclass(frozen=True)
class Original:
    index: int  # in the grid's `originals:`
    entry: OriginalSpec
    backbone: dict[str, Any]  # the cells' `backbone` spec
    original: Optional[dict[str, Any]]  # the cells' `original` spec; None: an architecture trained from scratch only
    num_source: int  # classes of the task it was trained on
    pretrain: Optional[Cell] = None  # the cell that trains it
    label: Optional[str] = None  # what tells it apart from another original of the same backbone and dataset


def resolve_originals(grid: GridFile, fallbacks: Collection[int] = ()) -> list[Original]:
    """Every original of the grid; those whose index is in `fallbacks` pretrain on their `fallback:` dataset."""
    originals = [_resolve(o, i, grid, i in fallbacks) for i, o in enumerate(grid.originals)]
    # readable names stay short; only originals that would share one carry what sets them apart, and a
    # preprocessing other than the weights' own always shows
    plain = [(o.backbone["name"], o.original["trained_on"] if o.original else None) for o in originals]
    return [_labelled(o, o.label if plain.count(key) > 1 or "preprocessing" in o.backbone else None)
            for o, key in zip(originals, plain, strict=True)]


def _labelled(original: Original, label: Optional[str]) -> Original:
    pretrain = original.pretrain and replace(original.pretrain, original_label=label)
    return replace(original, label=label, pretrain=pretrain)


def _backbone(name: str, where: str) -> BackboneInfo:
    """A short name, or a library name (`timm:...`) its family resolves; one line when neither."""
    if ":" not in name:
        check_known("backbone", name, list_backbones(), where)
    try:
        return backbone_info(name)
    except (UnknownName, ValueError) as e:
        raise GridError(f"{where}: {e}") from None


def _resolve(orig: OriginalSpec, i: int, grid: GridFile, falls_back: bool) -> Original:
    where = f"originals[{i}]"
    info = _backbone(orig.backbone, f"{where}.backbone")
    backbone = {"name": orig.backbone, "input_size": orig.input_size or info.input_size}
    if orig.preprocessing is not None:  # absent at the default, so the cell_ids of other grids stay what they were
        try:
            check_preprocessing(orig.backbone, orig.preprocessing)
        except ValueError as e:
            raise GridError(f"{where}.preprocessing: {e}") from None
        backbone["preprocessing"] = orig.preprocessing
    if orig.weights is not None:
        if orig.trained_on not in (None, IMAGENET):
            raise GridError(f"{where}: weights: imagenet means trained_on: imagenet, not {orig.trained_on!r}")
        if orig.weights not in info.weights:
            raise GridError(f"{where}.weights: backbone {orig.backbone!r} has no {orig.weights} weights")
        original = {"trained_on": IMAGENET, "weights": orig.weights, "pretrain_cell": None}
        label = f"{IMAGENET}[preprocessing={orig.preprocessing}]" if orig.preprocessing else None
        return Original(i, orig, backbone, original, info.num_classes, label=label)
    if orig.trained_on is None:
        if orig.methods and not any(METHODS.get(m).uses_original for m in orig.methods if m in METHODS):
            # an architecture for whole-network methods only (e.g. a from-scratch baseline): nothing to pretrain
            return Original(i, orig, backbone, None, info.num_classes)
        baseline = next(m.name for m in map(METHODS.get, METHODS.names()) if m.is_baseline)
        raise GridError(f"{where}: give trained_on: DATASET (a pretrain cell makes the model) or weights: imagenet"
                        f" (or methods: [{baseline}] for an architecture trained from scratch only)")
    for key in ("trained_on", "fallback"):
        if getattr(orig, key) is not None:
            check_known("dataset", getattr(orig, key), list_datasets(), f"{where}.{key}")
    trained_on = orig.fallback if falls_back and orig.fallback else orig.trained_on
    return _pretrained(orig, i, grid, backbone, trained_on)


def _pretrained(orig: OriginalSpec, i: int, grid: GridFile, backbone: dict[str, Any], trained_on: str) -> Original:
    """An original that a cell of the grid trains on `trained_on` first."""
    where = f"originals[{i}]"
    # one recipe per original: lists in the grid-wide hparams sweep the reprogramming cells, not the original
    grid_scalars = {k: v for k, v in grid.hparams.items() if "," not in k and not isinstance(v, list)}
    hparams = validated(HParams, {**grid_scalars, **orig.hparams}, f"{where}.hparams")
    split = validated(SplitSpec, {**grid.split, **orig.split}, f"{where}.split")
    spec = {
        "method": {"name": original_maker().name}, "backbone": backbone, "original": None, "task": trained_on,
        "hparams": hparams.model_dump(), "split": split.model_dump(), "seed": orig.seed,
    }
    pretrain = Cell(grid.name, spec, make_cell_id(spec))
    original = {"trained_on": trained_on, "weights": None, "pretrain_cell": pretrain.cell_id}
    label = trained_on + non_default(spec["method"], spec["hparams"])
    label += f"[seed={orig.seed}]" if orig.seed else ""
    return Original(i, orig, backbone, original, dataset_info(trained_on).num_classes, pretrain, label)
