"""A cell and a grid of cells: a cell's identity is the hash of its canonical spec (`cell_id`), its name is built from
what sets it apart from its method's defaults, so both are the same on every machine."""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bench.grid import filters
from bench.grid.errors import GridError
from bench.grid.schema import HParams
from bench.grid.search_space import Space
from bench.methods import METHODS


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def make_cell_id(spec: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the spec: the same on every machine and Python version."""
    bad = _non_finite(spec, "")
    if bad:  # JSON has no inf or nan; a cell with lr: .inf could not run anyway
        raise GridError(f"{bad[0]}: {bad[1]!r} is not a finite number")
    return hashlib.sha256(canonical_json(spec).encode("ascii")).hexdigest()[:12]


def _non_finite(value: Any, where: str) -> Optional[tuple[str, float]]:
    """(path, value) of the first inf or nan in a spec, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where, value
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


@dataclass(frozen=True)
class Cell:
    grid: str
    spec: dict[str, Any]  # canonical: every default resolved, JSON-serialisable
    cell_id: str
    depends_on: tuple[str, ...] = ()
    skip_reason: Optional[str] = None  # set for combinations a method's `skip` rejects
    # set only when two originals share backbone and dataset: e.g. `fashion_mnist[epochs=2]` tells them apart
    original_label: Optional[str] = None
    # the grid's published table (bench/reference), so a cell can carry its figure into MLflow; not in the spec,
    # so not in the cell_id: the same experiment compared with another table is the same cell
    reference: Optional[str] = None
    # what `reprogbench sweep` samples for this cell (bench.grid.search_space); not part of the spec or the cell_id
    search: Optional[Space] = None

    @property
    def method(self) -> str:
        return self.spec["method"]["name"]

    @property
    def task(self) -> str:
        return self.spec["task"]

    @property
    def backbone(self) -> str:
        return self.spec["backbone"]["name"]

    @property
    def seed(self) -> int:
        return self.spec["seed"]

    @property
    def trained_on(self) -> Optional[str]:
        original = self.spec["original"]
        return original["trained_on"] if original else None

    @property
    def makes_original(self) -> bool:
        """A cell that trains an original model other cells reprogram (it runs before them)."""
        return METHODS.get(self.method).makes_original

    @property
    def method_label(self) -> str:
        """The method with what sets it apart from its defaults, e.g. `ar[input_size=16,lr=0.05]`."""
        return self.method + non_default(self.spec["method"], self.spec["hparams"])

    @property
    def name(self) -> str:
        """A readable run name, e.g. `ar fashion_mnist/smallcnn -> digits seed0`."""
        if self.makes_original:
            return f"{self.method} {self.backbone} on {self.original_label or self.task} seed{self.seed}"
        if self.spec["original"] is None:
            return f"{self.method_label} {self.backbone} -> {self.task} seed{self.seed}"
        return (f"{self.method_label} {self.original_label or self.trained_on}/{self.backbone} -> {self.task} "
                f"seed{self.seed}")


def non_default(method_spec: Mapping[str, Any], hparams: Mapping[str, Any]) -> str:
    """`[input_size=16,lr=0.05]`: what sets a cell apart from its method's defaults and the thesis recipe."""
    method = METHODS.get(method_spec["name"])
    defaults = {**method.Params().model_dump(), **HParams().model_dump(), **method.hparams, "name": None}
    changed = [f"{k}={short_value(v)}" for k, v in sorted({**method_spec, **hparams}.items())
               if k != "name" and defaults.get(k) != v]
    return f"[{','.join(changed)}]" if changed else ""


def short_value(value: Any) -> str:
    """A value as a name shows it: a sampled lr of 0.0123456789 reads as 0.01235; 0.05 and 0.0 stay as they are."""
    text = str(value)
    return f"{value:.4g}" if isinstance(value, float) and len(text) > 7 else text


@dataclass
class Grid:
    name: str
    path: Path
    cells: list[Cell]  # dependency order: cells that make an original first
    skipped: list[Cell] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. a fallback that was taken
    reference: Optional[str] = None  # the published table the cells are compared with (bench/reference)
    not_run: dict[str, str] = field(default_factory=dict)  # reference rows not run -> why
    compare_with: Optional[str] = None  # the shipped grid this one is a variant of (the report pairs them)
    differs: list[str] = field(default_factory=list)  # what this variant does differently, one line each
    # cells of `optional` originals whose inputs are not on this machine (also in `skipped`); `prepare` fetches them
    unprepared: list[Cell] = field(default_factory=list)
    # cells that only `optional` originals ask for: they run where their inputs are prepared (bench.grid.availability)
    optional_ids: frozenset[str] = frozenset()
    # cell_id -> where it came in the expansion, so a later pass keeps `skipped` in that order
    expansion_order: dict[str, int] = field(default_factory=dict, repr=False)

    def by_id(self) -> dict[str, Cell]:
        return {c.cell_id: c for c in self.cells}

    def select(self, chosen: Mapping[str, str]) -> list[Cell]:
        """Cells matching every filter (bench.grid.filters), plus what they depend on, in dependency order."""
        return filters.select(self.cells, chosen)
