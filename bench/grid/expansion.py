"""Grids and cells: a grid YAML -> validated, expanded cells, each keyed by a stable `cell_id`.

A grid names original models, new tasks, methods with their parameters, hyperparameters and seeds. Any list
value expands as a cartesian product; keys joined by commas zip their values, as benchopt does:
`"mask, combine": [[centre, add], [ones, multiply]]` gives two cells, not four.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from bench.data import dataset_available, dataset_info, known_task, list_datasets
from bench.grid_guard import MAX_CELLS, GuardError, cell_bound, check_cells, check_name, load_yaml
from bench.methods import METHODS, list_methods
from bench.models import backbone_info, list_backbones
from bench.search_space import SearchSpaceError, Space, parse_space, values_to_check

GRIDS_DIR = Path(__file__).parent / "grids"
IMAGENET = "imagenet"


class GridError(ValueError):
    """A grid that cannot run. The message is one line: file, key, problem, what is allowed."""


# --------------------------------------------------------------------------- schemas


# what every seeded library accepts (numpy: 0 <= seed < 2**32); outside it a cell would fail when it starts
Seed = Annotated[StrictInt, Field(ge=0, lt=2**32)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HParams(_Strict):
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(default=1.0e-3, gt=0)
    batch_size: StrictInt = Field(default=128, ge=1)
    epochs: StrictInt = Field(default=10, ge=1)
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)  # sgd only


class SplitSpec(_Strict):
    seed: Seed = 0
    val_fraction: float = Field(default=0.1, gt=0, lt=1)
    test_fraction: float = Field(default=0.2, gt=0, lt=1)  # only for datasets without a test split
    max_train: Optional[StrictInt] = Field(default=None, ge=1)  # stratified subsample of train, for small runs


class OriginalSpec(_Strict):
    backbone: str
    trained_on: Optional[str] = None  # a dataset: a `pretrain` cell makes the model
    weights: Optional[Literal["imagenet"]] = None  # or ready-made weights
    fallback: Optional[str] = None  # dataset to pretrain on when `trained_on` is not on disk
    input_size: Optional[StrictInt] = Field(default=None, ge=4)
    seed: Seed = 0
    hparams: dict[str, Any] = {}
    split: dict[str, Any] = {}  # how its pretrain cell splits its original task
    # how the new tasks of this original's cells are split, over the grid's `split` (e.g. a smaller max_train for
    # a small original's cells while ImageNet cells of the same grid train on everything)
    task_split: dict[str, Any] = {}
    # pair this original only with these new tasks / methods (default: all the grid's); a table's rows are
    # (original, task) pairs, not a product
    tasks: Optional[list[str]] = Field(default=None, min_length=1)
    methods: Optional[list[str]] = Field(default=None, min_length=1)
    # method name -> parameters for this original's cells, e.g. {ar: {input_size: 16}} on a 28px canvas
    method_params: dict[str, dict[str, Any]] = {}
    # true: its cells run only where their inputs (ImageNet weights, datasets) are prepared; elsewhere they are
    # listed as skipped with what is missing, and `reprogbench prepare GRID` still fetches them
    optional: bool = False


class GridFile(_Strict):
    name: Optional[str] = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    originals: list[OriginalSpec] = Field(min_length=1)
    tasks: list[str] = Field(min_length=1)
    methods: list[dict[str, Any]] = Field(min_length=1)
    hparams: dict[str, Any] = {}
    split: dict[str, Any] = {}
    seeds: list[Seed] = Field(default=[0], min_length=1)
    # the published table its cells are compared with (bench/reference/<name>.csv), e.g. thesis_table_3_1
    reference: Optional[str] = None
    # rows of that table this grid cannot run, with why (e.g. a backbone with no PyTorch equivalent): shown by
    # `reprogbench ls` so an absent row is a stated choice, never a silent gap
    not_run: dict[str, str] = {}


# --------------------------------------------------------------------------- cells


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
    # what `reprogbench sweep` samples for this cell (bench.search_space); not part of the spec or the cell_id
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
    def method_label(self) -> str:
        """The method with what sets it apart from its defaults, e.g. `ar[input_size=16,lr=0.05]`."""
        return self.method + _non_default(self.spec["method"], self.spec["hparams"])

    @property
    def name(self) -> str:
        """A readable run name, e.g. `ar fashion_mnist/smallcnn -> digits seed0`."""
        method = self.method_label
        if self.method == "pretrain":
            return f"pretrain {self.backbone} on {self.original_label or self.task} seed{self.seed}"
        if self.spec["original"] is None:
            return f"{method} {self.backbone} -> {self.task} seed{self.seed}"
        return f"{method} {self.original_label or self.trained_on}/{self.backbone} -> {self.task} seed{self.seed}"

    def matches(self, filters: Mapping[str, str]) -> bool:
        fields = {
            "method": self.method, "task": self.task, "backbone": self.backbone, "seed": str(self.seed),
            "original": self.trained_on or "", "id": self.cell_id,
        }
        return all(fields[k] == v for k, v in filters.items())


def _non_default(method_spec: Mapping[str, Any], hparams: Mapping[str, Any]) -> str:
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


FILTER_KEYS = ("method", "task", "backbone", "seed", "original", "id")


def parse_filters(items: list[str]) -> dict[str, str]:
    """`["method=ar", "task=digits"]` -> dict; a bad item is a GridError naming the allowed keys."""
    filters = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in FILTER_KEYS:
            raise GridError(f"--filter {item!r}: expected KEY=VALUE with KEY one of {', '.join(FILTER_KEYS)}")
        filters[key] = value
    return filters


@dataclass
class Grid:
    name: str
    path: Path
    cells: list[Cell]  # dependency order: pretrain cells first
    skipped: list[Cell] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. a fallback that was taken
    reference: Optional[str] = None  # the published table the cells are compared with (bench/reference)
    not_run: dict[str, str] = field(default_factory=dict)  # reference rows not run -> why
    # cells of `optional` originals whose inputs are not on this machine (also in `skipped`); `prepare` fetches them
    unprepared: list[Cell] = field(default_factory=list)

    def by_id(self) -> dict[str, Cell]:
        return {c.cell_id: c for c in self.cells}

    def select(self, filters: Mapping[str, str]) -> list[Cell]:
        """Cells matching every filter, plus what they depend on, in dependency order."""
        chosen = {c.cell_id for c in self.cells if c.matches(filters)}
        chosen |= {dep for c in self.cells if c.cell_id in chosen for dep in c.depends_on}
        return [c for c in self.cells if c.cell_id in chosen]


# --------------------------------------------------------------------------- expansion


def expand(mapping: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """Cartesian product over list values; `"a, b": [[1, 2], [3, 4]]` zips a and b."""
    axes: list[list[dict[str, Any]]] = []
    for key, value in mapping.items():
        if "," in key:
            names = [k.strip() for k in key.split(",")]
            rows_ok = isinstance(value, list) and value and all(
                isinstance(v, list) and len(v) == len(names) for v in value
            )
            if not rows_ok:
                raise GridError(f"{where}.{key}: zipped keys take a non-empty list of [{', '.join(names)}] lists")
            axes.append([dict(zip(names, v, strict=True)) for v in value])
        elif isinstance(value, list):
            if not value:
                raise GridError(f"{where}.{key}: an empty list expands to no cells")
            axes.append([{key: v} for v in value])
        else:
            axes.append([{key: value}])
    return [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*axes)]


def _validated(model: type[BaseModel], values: Mapping[str, Any], where: str, also_allowed: tuple = ()) -> BaseModel:
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        raise GridError(_one_line(exc, model, where, also_allowed)) from None


def _one_line(exc: ValidationError, model: type[BaseModel], where: str, also_allowed: tuple = ()) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    key = f"{where}.{loc}" if where and loc else (where or loc)
    if err["type"] == "extra_forbidden":
        allowed = ", ".join([*also_allowed, *model.model_fields])
        return f"{key}: unknown key; allowed: {allowed}"
    if err["type"] == "missing":
        return f"{key}: required key is missing"
    return f"{key}: {err['msg']} (got {err.get('input')!r})"


def _check_known(kind: str, name: str, known: list[str], where: str) -> None:
    if name not in known:
        raise GridError(f"{where}: unknown {kind} {name!r}; known: {', '.join(known)}")


def _base_spec(backbone: str, input_size: Optional[int]) -> dict[str, Any]:
    return {"name": backbone, "input_size": input_size or backbone_info(backbone).input_size}


def _resolve_original(orig: OriginalSpec, i: int, grid: GridFile, data_root: Optional[Path], notes: list[str]):
    """-> (original spec for the cell, backbone spec, num source classes, pretrain Cell or None)."""
    where = f"originals[{i}]"
    _check_known("backbone", orig.backbone, list_backbones(), f"{where}.backbone")
    info = backbone_info(orig.backbone)
    backbone = _base_spec(orig.backbone, orig.input_size)
    if orig.weights is not None:
        if orig.trained_on not in (None, IMAGENET):
            raise GridError(f"{where}: weights: imagenet means trained_on: imagenet, not {orig.trained_on!r}")
        if orig.weights not in info.weights:
            raise GridError(f"{where}.weights: backbone {orig.backbone!r} has no {orig.weights} weights")
        original = {"trained_on": IMAGENET, "weights": orig.weights, "pretrain_cell": None}
        return original, backbone, info.num_classes, None, None
    if orig.trained_on is None:
        if orig.methods and not any(METHODS.get(m).uses_original for m in orig.methods if m in METHODS):
            # an architecture for whole-network methods only (e.g. a from-scratch baseline): nothing to pretrain
            return None, backbone, info.num_classes, None, None
        raise GridError(f"{where}: give trained_on: DATASET (a pretrain cell makes the model) or weights: imagenet"
                        " (or methods: [scratch] for an architecture trained from scratch only)")
    for key in ("trained_on", "fallback"):
        if getattr(orig, key) is not None:
            _check_known("dataset", getattr(orig, key), list_datasets(), f"{where}.{key}")
    trained_on = orig.trained_on
    if orig.fallback and not dataset_available(trained_on, data_root):
        notes.append(f"{trained_on} is not on disk: the {orig.backbone} original is pretrained on "
                     f"{orig.fallback} instead")
        trained_on = orig.fallback
    # one recipe per original: lists in the grid-wide hparams sweep the reprogramming cells, not the original
    grid_scalars = {k: v for k, v in grid.hparams.items() if "," not in k and not isinstance(v, list)}
    hparams = _validated(HParams, {**grid_scalars, **orig.hparams}, f"{where}.hparams")
    split = _validated(SplitSpec, {**grid.split, **orig.split}, f"{where}.split")
    pretrain_spec = {
        "method": {"name": "pretrain"}, "backbone": backbone, "original": None, "task": trained_on,
        "hparams": hparams.model_dump(), "split": split.model_dump(), "seed": orig.seed,
    }
    pretrain = Cell(grid="", spec=pretrain_spec, cell_id=make_cell_id(pretrain_spec))
    original = {"trained_on": trained_on, "weights": None, "pretrain_cell": pretrain.cell_id}
    label = trained_on + _non_default(pretrain_spec["method"], pretrain_spec["hparams"])
    label += f"[seed={orig.seed}]" if orig.seed else ""
    return original, backbone, dataset_info(trained_on).num_classes, pretrain, label


def check_keys(value: Any, where: str) -> None:
    """Every mapping key is a name: `1: 2` or `null: x` in a grid is a typo, and later code joins keys as text."""
    stack = [(value, where)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise GridError(f"{where or 'the grid'}: key {key!r} is not a name; keys are strings")
                stack.append((item, f"{where}.{key}" if where else key))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(value))


def build_grid(raw: Any, name: str, path: Path, data_root: Optional[Path] = None, max_cells: int = MAX_CELLS) -> Grid:
    if not isinstance(raw, dict):
        raise GridError("the file must be a YAML mapping with originals, tasks, methods, hparams, seeds")
    for key in ("hparams", "split"):
        if not isinstance(raw.get(key, {}), dict):
            raise GridError(f"{key}: must be a mapping of key: value")
    check_keys(raw, "")
    grid = _validated(GridFile, raw, "")
    name = grid.name or name
    check_name(name)
    check_cells(cell_bound(len(grid.originals), len(grid.tasks), grid.methods, grid.hparams, len(grid.seeds)),
                max_cells)
    for i, task in enumerate(grid.tasks):
        if not known_task(task):  # a dataset, or a joint task `a+b` of datasets (bench.data.joint)
            for part in task.split("+"):
                _check_known("dataset", part, list_datasets(), f"tasks[{i}]")
    for i, orig in enumerate(grid.originals):
        for task in orig.tasks or []:
            if task not in grid.tasks:
                raise GridError(f"originals[{i}].tasks: {task!r} is not among the grid's tasks: "
                                f"{', '.join(grid.tasks)}")
        for method_name in orig.methods or []:  # not `name`: that is the grid's
            _check_known("method", method_name, [n for n in list_methods() if n != "pretrain"],
                         f"originals[{i}].methods")
    if grid.reference is not None:
        from bench.reference import list_references

        _check_known("reference table", grid.reference, list_references(), "reference")
    # lists in the grid-wide hparams expand like method parameters; validate every combination up front
    hparam_sets = [_validated(HParams, h, "hparams").model_dump() for h in expand(grid.hparams, "hparams")]
    split = _validated(SplitSpec, grid.split, "split").model_dump()
    spec_o_index = {id(o): i for i, o in enumerate(grid.originals)}

    notes: list[str] = []
    cells: dict[str, Cell] = {}
    skipped: dict[str, Cell] = {}
    unprepared: dict[str, Cell] = {}
    originals = [_resolve_original(o, i, grid, data_root, notes) for i, o in enumerate(grid.originals)]
    # readable names stay short; only originals that would share one carry what sets them apart
    plain = [(o[1]["name"], o[0]["trained_on"] if o[0] else None) for o in originals]
    originals = [(*o[:4], o[4] if plain.count(key) > 1 else None) for o, key in zip(originals, plain, strict=True)]
    for *_, pretrain, label in originals:
        if pretrain is not None:
            cells.setdefault(pretrain.cell_id, Cell(name, pretrain.spec, pretrain.cell_id, original_label=label))

    for m, entry in enumerate(grid.methods):
        where = f"methods[{m}]"
        if not isinstance(entry, dict) or "name" not in entry:
            raise GridError(f"{where}: a method entry needs name: one of {', '.join(list_methods())}")
        _check_known("method", entry["name"], [n for n in list_methods() if n != "pretrain"], f"{where}.name")
        method = METHODS.get(entry["name"])
        hparams_override = entry.get("hparams", {})
        if not isinstance(hparams_override, dict):
            raise GridError(f"{where}.hparams: must be a mapping of key: value")
        entry_keys = ("name", "hparams", "search", "tasks")
        params_raw = {k: v for k, v in entry.items() if k not in entry_keys}
        param_sets = [_validated(method.Params, p, where, entry_keys) for p in expand(params_raw, where)]
        # `tasks:` limits a method entry to some of the grid's tasks, as an original's `tasks:` does
        entry_tasks = entry.get("tasks")
        if entry_tasks is not None:
            if not isinstance(entry_tasks, list) or not entry_tasks:
                raise GridError(f"{where}.tasks: a non-empty list of the grid's tasks")
            for task in entry_tasks:
                if task not in grid.tasks:
                    raise GridError(f"{where}.tasks: {task!r} is not among the grid's tasks: {', '.join(grid.tasks)}")
        search = _search_space(method, entry, where)
        override_sets = expand(hparams_override, f"{where}.hparams")
        for (original, backbone, num_source, pretrain, label), spec_o, task, params, base_h, over_h, seed in (
            (o, spec_o, t, p, b, v, s) for (o, spec_o), t, p, b, v, s in itertools.product(
                zip(originals, grid.originals, strict=True), grid.tasks, param_sets, hparam_sets, override_sets,
                grid.seeds)
        ):
            if (spec_o.tasks and task not in spec_o.tasks) or (spec_o.methods and method.name not in spec_o.methods):
                continue
            if entry_tasks is not None and task not in entry_tasks:
                continue
            if original is None and method.uses_original:
                continue
            if method.name in spec_o.method_params:
                params = _validated(method.Params, {**params.model_dump(), **spec_o.method_params[method.name]},
                                    f"originals.method_params.{method.name}")
            hparams = _validated(HParams, {**base_h, **method.hparams, **over_h}, f"{where}.hparams").model_dump()
            spec = {
                "method": {"name": method.name, **params.model_dump()},
                "backbone": backbone,
                "original": original if method.uses_original else None,
                "task": task, "hparams": hparams, "seed": seed,
                "split": _validated(SplitSpec, {**split, **spec_o.task_split}, f"originals[{spec_o_index[id(spec_o)]}]"
                                    ".task_split").model_dump() if spec_o.task_split else split,
            }
            depends = (pretrain.cell_id,) if (pretrain is not None and method.uses_original) else ()
            cell_id = make_cell_id(spec)
            info = replace(backbone_info(backbone["name"]), input_size=backbone["input_size"])
            skip, reason = method.skip(params, info, num_source, dataset_info(task))
            label = label if method.uses_original else None
            missing = _unprepared(spec, data_root, name) if spec_o.optional and not skip else None
            if missing:
                unprepared.setdefault(cell_id, Cell(name, spec, cell_id, depends, missing, label))
                skip, reason = True, missing
            if skip:
                skipped.setdefault(cell_id, Cell(name, spec, cell_id, depends, reason, label))
            else:
                _check_search(spec, search, f"{where}.search")
                cells.setdefault(cell_id, Cell(name, spec, cell_id, depends, None, label, search=search))
    needed = {dep for c in cells.values() for dep in c.depends_on}
    # a pretrain cell nobody reprograms (e.g. a grid of scratch baselines) would be wasted compute
    kept = [c for c in cells.values() if c.method != "pretrain" or c.cell_id in needed]
    ordered = sorted(kept, key=lambda c: c.method != "pretrain")  # stable: pretrain first
    if grid.reference is not None:
        ordered = [replace(c, reference=grid.reference) for c in ordered]
        skipped = {k: replace(c, reference=grid.reference) for k, c in skipped.items()}
        unprepared = {k: replace(c, reference=grid.reference) for k, c in unprepared.items()}
    return Grid(name=name, path=path, cells=ordered, skipped=list(skipped.values()), notes=notes,
                reference=grid.reference, not_run=dict(grid.not_run), unprepared=list(unprepared.values()))


def _unprepared(spec: Mapping[str, Any], data_root: Optional[Path], grid: str) -> Optional[str]:
    """What an optional original's cell lacks on this machine (None: all there)."""
    from bench.models.thesis_nets import weights_present

    missing = []
    original = spec["original"] or {}
    if original.get("weights") is not None and not weights_present(spec["backbone"]["name"]):
        missing.append(f"{original['weights']} weights for {spec['backbone']['name']}")
    if not dataset_available(spec["task"], data_root):
        missing.append(f"dataset {spec['task']}")
    if not missing:
        return None
    return f"not prepared: {' and '.join(missing)}; `reprogbench prepare {grid}` fetches them (optional original)"


# --------------------------------------------------------------------------- search spaces and overrides


def searchable(method_name: str) -> list[str]:
    """What a sweep may sample for a method: every hyperparameter and every parameter of the method."""
    return sorted({*HParams.model_fields, *METHODS.get(method_name).Params.model_fields})


def _search_space(method, entry: Mapping[str, Any], where: str) -> Optional[Space]:
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
    return {**spec, "hparams": _validated(HParams, hparams, "hparams").model_dump(),
            "method": {"name": method.name, **_validated(method.Params, params, method.name).model_dump()}}


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


def _check_search(spec: Mapping[str, Any], search: Optional[Space], where: str) -> None:
    """Every end of every range and every choice must make a cell that can run: caught here, not mid-sweep."""
    for name, value in values_to_check(search or {}):
        try:
            reason = skip_reason(with_overrides(spec, {name: value}))
        except GridError as exc:
            raise GridError(f"{where}.{name}: {value!r} is not a valid value ({exc})") from None
        if reason:
            raise GridError(f"{where}.{name}: {value!r} makes a cell that cannot run: {reason}")


def resolve_grid_path(grid: str | Path) -> Path:
    """A path to a YAML file, or the name of a grid shipped in bench/grids (e.g. `demo`)."""
    path = Path(grid)
    if path.is_file():
        return path
    shipped = GRIDS_DIR / f"{grid}.yaml"
    if shipped.is_file():
        return shipped
    known = ", ".join(sorted(p.stem for p in GRIDS_DIR.glob("*.yaml")))
    raise GridError(f"{grid}: no such grid file, and not a shipped grid ({known})")


def load_grid(grid: str | Path, data_root: Optional[Path] = None, max_cells: int = MAX_CELLS) -> Grid:
    """Load, validate and expand a grid (within `bench.grid_guard`'s limits). Raises GridError with one line that
    names the file."""
    path = resolve_grid_path(grid)
    try:
        raw = load_yaml(read_text(path))
    except yaml.constructor.ConstructorError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise GridError(f"{path}: not plain YAML{at}: {exc.problem}; a grid holds only mappings, lists, strings and "
                        "numbers (no tags such as !!python/object)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())  # a ReaderError has no problem
        raise GridError(f"{path}: not valid YAML{at}: {problem}") from None
    except GuardError as exc:
        raise GridError(f"{path}: {exc}") from None
    default_name = re.sub(r"[^A-Za-z0-9_-]", "_", path.stem)
    try:
        return build_grid(raw, default_name, path, data_root, max_cells)
    except (GridError, GuardError) as exc:
        raise GridError(f"{path}: {exc}") from None


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise GridError(f"{path}: not a text file (UTF-8): {exc.reason} at byte {exc.start}") from None
    except OSError as exc:
        raise GridError(f"{path}: cannot read it: {exc.strerror or exc}") from None
