"""A grid's expansion into cells, a pure function of its YAML: the same grid gives the same cells on every machine.

Steps: validate the file (bench.grid.validation), resolve its originals (bench.grid.originals), expand each method
entry over originals x tasks x parameters x hyperparameters x seeds, then order the cells (those that make an
original first) and drop an original nobody reprograms. What is on disk is bench.grid.availability's business.
"""
from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel

from bench.data import dataset_info
from bench.grid.cells import Cell, Grid, make_cell_id
from bench.grid.combinations import expand
from bench.grid.errors import GridError, check_known, validated
from bench.grid.guard import MAX_CELLS
from bench.grid.originals import Original, resolve_originals
from bench.grid.overrides import check_search, entry_search_space
from bench.grid.schema import GridFile, HParams, SplitSpec
from bench.grid.search_space import Space
from bench.grid.validation import validate_grid
from bench.methods import METHODS, Method, grid_methods, list_methods
from bench.models import backbone_info

ENTRY_KEYS = ("name", "hparams", "search", "tasks")  # what a method entry holds besides the method's parameters


def build_grid(raw: Any, name: str, path: Path, fallbacks: Collection[int] = (), max_cells: int = MAX_CELLS) -> Grid:
    """Parsed YAML -> Grid; `fallbacks`: indices of the originals that pretrain on their `fallback:` dataset."""
    return expand_grid(validate_grid(raw, name, max_cells), path, fallbacks)


def expand_grid(grid: GridFile, path: Path, fallbacks: Collection[int] = ()) -> Grid:
    """A validated grid file -> its cells, skipped cells and which cells only optional originals ask for."""
    # lists in the grid-wide hparams expand like method parameters; validate every combination up front
    hparam_sets = [validated(HParams, h, "hparams").model_dump() for h in expand(grid.hparams, "hparams")]
    split = validated(SplitSpec, grid.split, "split").model_dump()
    originals = resolve_originals(grid, fallbacks)
    listing = _Listing()
    for original in originals:
        if original.pretrain is not None:
            listing.add(original.pretrain, optional=False)
    for m, raw_entry in enumerate(grid.methods):
        entry = _method_entry(raw_entry, f"methods[{m}]", grid.tasks)
        for cell, optional in _entry_cells(entry, originals, grid, hparam_sets, split):
            listing.add(cell, optional)
    return listing.grid(grid, path)


@dataclass(frozen=True)
class _Entry:
    """One entry of the grid's `methods:`, validated."""
    where: str
    method: Method
    param_sets: list[BaseModel]
    override_sets: list[dict[str, Any]]
    tasks: Optional[list[str]]  # limits the entry to some of the grid's tasks
    search: Optional[Space]


def _method_entry(entry: Any, where: str, grid_tasks: list[str]) -> _Entry:
    if not isinstance(entry, dict) or "name" not in entry:
        raise GridError(f"{where}: a method entry needs name: one of {', '.join(list_methods())}")
    check_known("method", entry["name"], grid_methods(), f"{where}.name")
    method = METHODS.get(entry["name"])
    hparams_override = entry.get("hparams", {})
    if not isinstance(hparams_override, dict):
        raise GridError(f"{where}.hparams: must be a mapping of key: value")
    params_raw = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
    param_sets = [validated(method.Params, p, where, ENTRY_KEYS) for p in expand(params_raw, where)]
    # `tasks:` limits a method entry to some of the grid's tasks, as an original's `tasks:` does
    entry_tasks = entry.get("tasks")
    if entry_tasks is not None:
        if not isinstance(entry_tasks, list) or not entry_tasks:
            raise GridError(f"{where}.tasks: a non-empty list of the grid's tasks")
        for task in entry_tasks:
            if task not in grid_tasks:
                raise GridError(f"{where}.tasks: {task!r} is not among the grid's tasks: {', '.join(grid_tasks)}")
    search = entry_search_space(method, entry, where)
    override_sets = expand(hparams_override, f"{where}.hparams")
    return _Entry(where, method, param_sets, override_sets, entry_tasks, search)


def _entry_cells(entry: _Entry, originals: list[Original], grid: GridFile, hparam_sets: list[dict[str, Any]],
                 split: dict[str, Any]) -> Iterator[tuple[Cell, bool]]:
    """(cell, whether its original is `optional`) for every combination the entry and its originals allow."""
    method = entry.method
    for original, task, params, base_h, over_h, seed in itertools.product(
            originals, grid.tasks, entry.param_sets, hparam_sets, entry.override_sets, grid.seeds):
        spec_o = original.entry
        if (spec_o.tasks and task not in spec_o.tasks) or (spec_o.methods and method.name not in spec_o.methods):
            continue
        if entry.tasks is not None and task not in entry.tasks:
            continue
        if original.original is None and method.uses_original:
            continue
        if method.name in spec_o.method_params:
            params = validated(method.Params, {**params.model_dump(), **spec_o.method_params[method.name]},
                               f"originals.method_params.{method.name}")
        hparams = validated(HParams, {**base_h, **method.hparams, **over_h}, f"{entry.where}.hparams").model_dump()
        spec = {
            "method": {"name": method.name, **params.model_dump()},
            "backbone": original.backbone,
            "original": original.original if method.uses_original else None,
            "task": task, "hparams": hparams, "seed": seed,
            "split": _task_split(original, split),
        }
        yield _cell(grid.name, spec, entry, original, params), spec_o.optional


def _task_split(original: Original, split: dict[str, Any]) -> dict[str, Any]:
    if not original.entry.task_split:
        return split
    where = f"originals[{original.index}].task_split"
    return validated(SplitSpec, {**split, **original.entry.task_split}, where).model_dump()


def _cell(grid: str, spec: dict[str, Any], entry: _Entry, original: Original, params: BaseModel) -> Cell:
    """The cell of `spec`; one the method's `skip` rejects carries why, one it runs its search space."""
    method = entry.method
    uses = method.uses_original
    depends = (original.pretrain.cell_id,) if (original.pretrain is not None and uses) else ()
    label = original.label if uses else None
    cell_id = make_cell_id(spec)
    info = replace(backbone_info(spec["backbone"]["name"]), input_size=spec["backbone"]["input_size"])
    skip, reason = method.skip(params, info, original.num_source, dataset_info(spec["task"]))
    if skip:
        return Cell(grid, spec, cell_id, depends, reason, label)
    check_search(spec, entry.search, f"{entry.where}.search")
    return Cell(grid, spec, cell_id, depends, None, label, search=entry.search)


@dataclass
class _Listing:
    """Cells as the expansion makes them: the first of equal cell_ids is kept, in the order they came."""
    cells: dict[str, Cell] = field(default_factory=dict)
    skipped: dict[str, Cell] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)  # asked for by an original that is not `optional`

    def add(self, cell: Cell, optional: bool) -> None:
        self.order.setdefault(cell.cell_id, len(self.order))
        if cell.skip_reason is not None:
            self.skipped.setdefault(cell.cell_id, cell)
            return
        self.cells.setdefault(cell.cell_id, cell)
        if not optional:
            self.required.add(cell.cell_id)

    def grid(self, grid: GridFile, path: Path) -> Grid:
        cells, skipped = dependency_order(self.cells.values()), list(self.skipped.values())
        if grid.reference is not None:
            cells = [replace(c, reference=grid.reference) for c in cells]
            skipped = [replace(c, reference=grid.reference) for c in skipped]
        return Grid(name=grid.name, path=path, cells=cells, skipped=skipped, reference=grid.reference,
                    not_run=dict(grid.not_run), compare_with=grid.compare_with, differs=list(grid.differs),
                    optional_ids=frozenset(self.cells.keys() - self.required),
                    expansion_order=dict(self.order))


def dependency_order(cells: Collection[Cell]) -> list[Cell]:
    """Cells that make an original first (in their order), then the rest; an original nobody needs is dropped."""
    needed = {dep for c in cells for dep in c.depends_on}
    # a pretrain cell nobody reprograms (e.g. a grid of scratch baselines) would be wasted compute
    kept = [c for c in cells if not c.makes_original or c.cell_id in needed]
    return sorted(kept, key=lambda c: not c.makes_original)  # stable

