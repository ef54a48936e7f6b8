"""A cell's identity and name: stable cell ids from canonical JSON, ids that change with every hyperparameter and
only then, readable unique names."""
from __future__ import annotations

import re

import pytest
from fixtures_grids import BASE, load, of, only_ar_id

from bench.grid import canonical_json, load_grid, make_cell_id


def test_cell_id_golden_value():
    # Pinned on purpose: cell ids key finished results, checkpoints and MLflow tags across machines and Python
    # versions. If this fails, the hashing scheme (canonical JSON or digest) changed and every stored result is
    # orphaned; change the constant only together with a deliberate migration.
    spec = {"task": "digits", "seed": 0, "method": {"name": "ar", "lam": 1.0e-4},
            "hparams": {"lr": 0.05, "epochs": 2}, "note": "caf\u00e9"}
    assert canonical_json(spec) == (
        '{"hparams":{"epochs":2,"lr":0.05},"method":{"lam":0.0001,"name":"ar"},"note":"caf\\u00e9",'
        '"seed":0,"task":"digits"}'
    )
    assert make_cell_id(spec) == "6245f4692226"


def test_canonical_json_is_ascii_sorted_and_key_order_free():
    a = {"b": 1, "a": {"y": "\u00fc", "x": [1, 2]}}
    b = {"a": {"x": [1, 2], "y": "\u00fc"}, "b": 1}
    assert canonical_json(a) == canonical_json(b) == '{"a":{"x":[1,2],"y":"\\u00fc"},"b":1}'
    assert canonical_json(a).isascii()
    assert make_cell_id(a) == make_cell_id(b)
    assert re.fullmatch(r"[0-9a-f]{12}", make_cell_id(a))
    assert make_cell_id({"b": 2, "a": a["a"]}) != make_cell_id(a)
    with pytest.raises(ValueError):
        canonical_json({"lr": float("nan")})


def test_cell_id_ignores_key_order_and_explicit_defaults(tmp_path):
    plain = {**BASE, "methods": [{"name": "ar"}]}
    reordered = (
        "seeds: [0]\n"
        "methods:\n  - {lam: 1.0e-4, combine: add, name: ar, mask: centre, label_map: first_k}\n"
        "hparams: {epochs: 10, lr: 0.001, optimizer: adam}\n"
        "tasks: [digits]\n"
        "split: {val_fraction: 0.1, seed: 0}\n"
        "originals:\n  - {seed: 0, trained_on: digits, backbone: smallcnn}\n"
    )
    a, b = load(tmp_path, plain, "a"), load(tmp_path, reordered, "b")
    assert [c.cell_id for c in a.cells] == [c.cell_id for c in b.cells]
    assert [c.name for c in a.cells] == [c.name for c in b.cells]


@pytest.mark.parametrize("change", [
    {"hparams": {"lr": 0.01}},
    {"hparams": {"epochs": 3}},
    {"seeds": [1]},
    {"split": {"seed": 1}},
    {"methods": [{"name": "ar", "lam": 0.0}]},
    {"methods": [{"name": "ar", "hparams": {"batch_size": 64}}]},
    {"originals": [{"backbone": "smallcnn", "trained_on": "digits", "hparams": {"epochs": 2}}]},  # pretrain only
    {"originals": [{"backbone": "smallcnn", "trained_on": "digits", "seed": 1}]},
    {"originals": [{"backbone": "smallcnn", "trained_on": "digits", "input_size": 32}]},
])
def test_cell_id_changes_with_every_hyperparameter(tmp_path, change):
    assert only_ar_id(tmp_path, BASE, "base") != only_ar_id(tmp_path, {**BASE, **change}, "changed")


def test_pretrain_epochs_change_the_pretrain_and_the_dependent_ids_not_scratch(tmp_path):
    methods = [{"name": "ar"}, {"name": "scratch"}]
    a = load(tmp_path, {**BASE, "methods": methods}, "a")
    b = load(tmp_path, {**BASE, "methods": methods,
                        "originals": [{"backbone": "smallcnn", "trained_on": "digits", "hparams": {"epochs": 2}}]}, "b")
    assert of(a, "pretrain")[0].cell_id != of(b, "pretrain")[0].cell_id
    assert of(b, "pretrain")[0].spec["hparams"]["epochs"] == 2
    assert of(b, "ar")[0].spec["hparams"]["epochs"] == 10  # the original's hparams are its own
    assert of(a, "ar")[0].cell_id != of(b, "ar")[0].cell_id
    assert of(a, "scratch")[0].cell_id == of(b, "scratch")[0].cell_id


def test_cell_names(tmp_path):
    raw = {"originals": [{"backbone": "smallcnn", "trained_on": "fashion_mnist"}], "tasks": ["digits"],
           "seeds": [0, 1],
           "methods": [{"name": "ar", "mask": "centre", "lam": 1.0e-4},
                       {"name": "ar", "lam": 0, "input_size": 6, "hparams": {"lr": 0.05}},
                       {"name": "linear_probe"}, {"name": "scratch"}],
           "hparams": {"optimizer": "adam", "lr": 1.0e-3, "batch_size": 128, "epochs": 10}}
    names = [c.name for c in load(tmp_path, raw).cells]
    assert names == [
        "pretrain smallcnn on fashion_mnist seed0",
        "ar fashion_mnist/smallcnn -> digits seed0",
        "ar fashion_mnist/smallcnn -> digits seed1",
        "ar[input_size=6,lam=0.0,lr=0.05] fashion_mnist/smallcnn -> digits seed0",
        "ar[input_size=6,lam=0.0,lr=0.05] fashion_mnist/smallcnn -> digits seed1",
        "linear_probe fashion_mnist/smallcnn -> digits seed0",
        "linear_probe fashion_mnist/smallcnn -> digits seed1",
        "scratch smallcnn -> digits seed0",
        "scratch smallcnn -> digits seed1",
    ]


def test_demo_cell_names_follow_the_pattern(tmp_path, monkeypatch):
    monkeypatch.setenv("REPROGBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("REPROGBENCH_DEBIAN_FASHION_MNIST", str(tmp_path / "no-debian"))
    grid = load_grid("demo")
    pattern = re.compile(r"pretrain smallcnn on digits seed0"
                         r"|(ar|linear_probe)(\[[a-z_]+=[^\]]+\])? digits/smallcnn -> (digits|squares) seed0"
                         r"|scratch smallcnn -> (digits|squares) seed0")
    for cell in grid.cells + grid.skipped:
        assert pattern.fullmatch(cell.name), cell.name
    assert len({c.name for c in grid.cells}) == len(grid.cells)


def test_cell_names_are_unique_within_a_grid(tmp_path):
    raw = {**BASE, "originals": [{"backbone": "smallcnn", "trained_on": "digits", "hparams": {"epochs": 2}},
                                 {"backbone": "smallcnn", "trained_on": "digits", "hparams": {"epochs": 5}}]}
    grid = load(tmp_path, raw)
    assert len(grid.cells) == 4
    assert len({c.name for c in grid.cells}) == 4
