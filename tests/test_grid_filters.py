"""`--filter KEY=VALUE` and Grid.select: the matching cells plus what they depend on."""
from __future__ import annotations

import pytest
from fixtures_grids import BASE, load, of

from bench.grid import GridError, parse_filters


def test_select_returns_matching_cells_plus_their_dependencies(tmp_path):
    raw = {**BASE, "tasks": ["digits", "squares"], "seeds": [0, 1],
           "methods": [{"name": "ar", "input_size": 16}, {"name": "linear_probe"}, {"name": "scratch"}]}
    grid = load(tmp_path, raw)
    (pretrain,) = of(grid, "pretrain")
    chosen = grid.select({"method": "ar"})
    assert chosen[0] is pretrain
    assert chosen[1:] == of(grid, "ar") and len(chosen) == 5
    assert grid.select({"method": "scratch", "task": "squares", "seed": "1"}) == [
        c for c in of(grid, "scratch") if c.task == "squares" and c.seed == 1]
    target = of(grid, "linear_probe")[0]
    assert grid.select({"id": target.cell_id}) == [pretrain, target]
    assert grid.select({"original": "digits", "method": "pretrain"}) == []  # a pretrain cell has no original
    assert grid.select({"task": "cifar10"}) == []


def test_parse_filters():
    assert parse_filters(["method=ar", "seed=1", "task=a=b"]) == {"method": "ar", "seed": "1", "task": "a=b"}
    for bad in (["bogus=1"], ["method"], ["=ar"]):
        with pytest.raises(GridError, match="method, task, backbone, seed, original, id"):
            parse_filters(bad)
