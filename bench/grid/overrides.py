"""A cell with some parameters replaced (a sweep's trial, a tuned cell), and what a sweep may sample for a cell: its
method entry's `search:` or the method's default space, checked so every value it can draw makes a cell that runs."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Optional

from bench.data import dataset_info
from bench.grid.cells import Cell, make_cell_id
from bench.grid.errors import GridError, validated
from bench.grid.schema import HParams
from bench.grid.search_space import SearchSpaceError, Space, parse_space, values_to_check
from bench.methods import METHODS, Method
from bench.models import backbone_info


def searchable(method_name: str) -> list[str]:
    """What a sweep may sample for a method: every hyperparameter and every parameter of the method."""
    return sorted({*HParams.model_fields, *METHODS.get(method_name).Params.model_fields})


def entry_search_space(method: Method, entry: Mapping[str, Any], where: str) -> Optional[Space]:
    """The method entry's `search:`, else the method's default space; None for a method nobody sweeps."""
    raw = entry.get("search", method.search_space or None)
    if raw is None:
        return None
    try:
        return parse_space(raw, searchable(method.name), f"{where}.search")
    except SearchSpaceError as exc:
        raise GridError(str(exc)) from None


def with_overrides(spec: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The spec with some hyperparameters / method parameters replaced (a sweep's trial, a tuned cell),
    validated and canonical like any cell's spec."""
    method = METHODS.get(spec["method"]["name"])
    unknown = sorted(set(overrides) - set(searchable(method.name)))
    if unknown:
        raise GridError(f"{', '.join(unknown)}: not a hyperparameter or a parameter of {method.name}")
    hparams = {**spec["hparams"], **{k: v for k, v in overrides.items() if k in HParams.model_fields}}
    params = {**{k: v for k, v in spec["method"].items() if k != "name"},
              **{k: v for k, v in overrides.items() if k not in HParams.model_fields}}
    return {**spec, "hparams": validated(HParams, hparams, "hparams").model_dump(),
            "method": {"name": method.name, **validated(method.Params, params, method.name).model_dump()}}


def skip_reason(spec: Mapping[str, Any]) -> Optional[str]:
    """Why the method's `skip` rejects this spec, or None when it can run."""
    method = METHODS.get(spec["method"]["name"])
    original = spec["original"]
    info = replace(backbone_info(spec["backbone"]["name"]), input_size=spec["backbone"]["input_size"])
    on_dataset = original is not None and original["weights"] is None
    num_source = dataset_info(original["trained_on"]).num_classes if on_dataset else info.num_classes
    params = method.Params(**{k: v for k, v in spec["method"].items() if k != "name"})
    skip, reason = method.skip(params, info, num_source, dataset_info(spec["task"]))
    return reason if skip else None


def override_cell(cell: Cell, overrides: Mapping[str, Any]) -> Cell:
    """`cell` with some of its parameters replaced: its own spec, hence its own cell_id."""
    spec = with_overrides(cell.spec, overrides)
    reason = skip_reason(spec)
    if reason:
        raise GridError(f"{cell.name} with {dict(overrides)}: {reason}")
    return Cell(cell.grid, spec, make_cell_id(spec), cell.depends_on, original_label=cell.original_label,
                reference=cell.reference)


def check_search(spec: Mapping[str, Any], search: Optional[Space], where: str) -> None:
    """Every end of every range and every choice must make a cell that can run: caught here, not mid-sweep."""
    for name, value in values_to_check(search or {}):
        try:
            reason = skip_reason(with_overrides(spec, {name: value}))
        except GridError as exc:
            raise GridError(f"{where}.{name}: {value!r} is not a valid value ({exc})") from None
        if reason:
            raise GridError(f"{where}.{name}: {value!r} makes a cell that cannot run: {reason}")
