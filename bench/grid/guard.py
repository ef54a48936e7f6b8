"""Limits on what a grid file may be, checked before anything is built from it: hostile or mistyped grids get one
line, never a traceback, a frozen machine or a file written outside the results folder.

- Plain YAML only: PyYAML's safe loader (no object tags such as `!!python/object`), a size cap, and the document's
  size *with its aliases expanded* counted on the node graph before any Python object is built, so an alias
  bomb ("billion laughs": a few lines that expand to billions of values) or a recursive alias is refused.
- A grid's cells are counted from its lists before they are expanded (`cell_bound`); over `MAX_CELLS` the grid
  is refused unless `--max-cells` allows it (a typo such as `seeds: [0..1000]`, or a sweep list pasted twice).
- A grid's name becomes a folder under the results root: `.`/`..`, separators and control characters are refused.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import yaml

from bench.grid.combinations import expansion_size
from bench.grid.limits import MAX_CELLS  # noqa: F401 - where the checks below (and their callers) read it

MAX_GRID_BYTES = 1 << 20  # a grid is a few hundred bytes; a megabyte is no grid
MAX_NODES = 100_000  # values in the document once its aliases are expanded
MAX_DEPTH = 64  # nesting of mappings and lists
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_NAME = 100  # a folder, an MLflow experiment and a Slurm job name; with the suffixes the suite adds, below 255
# what the suite keeps beside the grids' folders in a results root (the sqlite store, its lock and journals,
# MLflow's artifacts): a grid named so would write into them
RESERVED = re.compile(r"^(mlflow\.db.*|mlartifacts|mlruns)$", re.IGNORECASE)


class GuardError(ValueError):
    """The grid file breaks one of the limits above; the message is one line naming it and the fix."""


def load_yaml(text: str) -> Any:
    """The document as Python objects, after the checks above; yaml.YAMLError for what is not YAML."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_GRID_BYTES:
        raise GuardError(f"the file is over {MAX_GRID_BYTES // 1024} KiB; a grid is a short YAML mapping")
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise GuardError(f"nested deeper than {MAX_DEPTH} levels") from None
        if node is None:
            return None
        count_nodes(node)
        try:
            return loader.construct_document(node)
        except RecursionError:
            raise GuardError(f"nested deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


def count_nodes(root: yaml.Node) -> int:
    """Values in the document with every alias expanded, without expanding them (memoised on the shared nodes);
    GuardError for a recursive alias, nesting deeper than MAX_DEPTH, or more than MAX_NODES values."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    # an explicit stack: a hostile document must not exhaust Python's recursion limit here
    stack: list[tuple[yaml.Node, bool, int]] = [(root, False, 0)]
    while stack:
        node, children_done, depth = stack.pop()
        key = id(node)
        if children_done:
            active.discard(key)
            sizes[key] = min(1 + sum(sizes[id(c)] for c in _children(node)), MAX_NODES + 1)
            if sizes[key] > MAX_NODES:
                raise GuardError(f"the document expands to more than {MAX_NODES:,} values (YAML aliases that "
                                 "repeat each other?); a grid is a short mapping")
            continue
        if key in sizes:
            continue
        if key in active:
            raise GuardError("a YAML alias refers to a node that contains it (a recursive document)")
        if depth > MAX_DEPTH:
            raise GuardError(f"nested deeper than {MAX_DEPTH} levels")
        check_unique_keys(node)
        active.add(key)
        stack.append((node, True, depth))
        stack.extend((child, False, depth + 1) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def check_unique_keys(node: yaml.Node) -> None:
    """A key given twice in one mapping is a GuardError: PyYAML keeps the last silently (`epochs: 2` then
    `epochs: 5000` would run 5,000)."""
    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[str] = set()
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
            if key.value in seen:
                raise GuardError(f"line {key.start_mark.line + 1}: key {key.value!r} appears twice in one mapping; "
                                 "YAML would keep only the last, so give it once")
            seen.add(key.value)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_name(name: str, where: str = "name") -> None:
    """A grid name is a folder under the results root: letters, digits, `_ . -`, not only dots."""
    if not isinstance(name, str) or not NAME.match(name) or set(name) == {"."}:
        raise GuardError(f"{where}: {name!r} cannot name a results folder; use letters, digits, _ . - "
                         "(not '.' or '..', no / \\ or control characters)")
    if len(name) > MAX_NAME:
        raise GuardError(f"{where}: {len(name)} characters, over {MAX_NAME}; the name becomes a folder, an MLflow "
                         "experiment and a Slurm job name, so give a shorter one")
    if RESERVED.match(name):
        raise GuardError(f"{where}: {name!r} is a name the suite uses for its own files in the results folder "
                         "(mlflow.db*, mlartifacts, mlruns); give the grid another name")


def cell_bound(originals: int, tasks: int, methods: list[Mapping[str, Any]], hparams: Mapping[str, Any],
               seeds: int) -> int:
    """An upper bound on the grid's cells (before per-original restrictions and skips), from its list lengths."""
    per_method = 0
    for entry in methods:
        if not isinstance(entry, Mapping):
            continue
        params = {k: v for k, v in entry.items() if k not in ("name", "hparams", "search")}
        overrides = entry.get("hparams") if isinstance(entry.get("hparams"), Mapping) else {}
        per_method += expansion_size(params) * expansion_size(overrides)
    return math.prod([max(originals, 1), max(tasks, 1), per_method, expansion_size(hparams), max(seeds, 1)]) + originals


def check_cells(bound: int, max_cells: int) -> None:
    if bound > max_cells:
        raise GuardError(f"the grid expands to up to {bound:,} cells, over the limit of {max_cells:,}; check its "
                         f"lists for a typo, or pass --max-cells {bound} to accept it")
