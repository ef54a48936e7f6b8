"""Grids and cells: validation with one-line errors, expansion, dependencies, stable cell ids, names."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.grid import GridError, canonical_json, load_grid, make_cell_id, parse_filters
from bench.models import list_backbones

BASE = {
    "originals": [{"backbone": "smallcnn", "trained_on": "digits"}],
    "tasks": ["digits"],
    "methods": [{"name": "ar"}],
}
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def write(tmp_path: Path, raw, name: str = "grid") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, sort_keys=False))
    return path


def load(tmp_path: Path, raw, name: str = "grid"):
    return load_grid(write(tmp_path, raw, name))


def of(grid, method: str) -> list:
    return [c for c in grid.cells if c.method == method]


def only_ar_id(tmp_path: Path, raw, name: str) -> str:
    (cell,) = of(load(tmp_path, raw, name), "ar")
    return cell.cell_id


# --------------------------------------------------------------------------- validation


BAD_GRIDS = {  # id -> (grid, substrings the one-line message must contain: the key, then what is allowed)
    "top_level_key": ({**BASE, "bogus": 1},
                      ["bogus", "unknown key", "allowed:", "originals", "tasks", "methods", "hparams", "seeds"]),
    "hparams_key": ({**BASE, "hparams": {"lrr": 0.1}},
                    ["hparams.lrr", "unknown key", "optimizer", "lr", "batch_size", "epochs"]),
    "method_key": ({**BASE, "methods": [{"name": "ar", "maks": "centre"}]},
                   ["methods[0].maks", "unknown key", "mask", "combine", "label_map", "lam", "input_size"]),
    "method_hparams_key": ({**BASE, "methods": [{"name": "ar", "hparams": {"epoch": 3}}]},
                           ["methods[0].hparams.epoch", "unknown key", "epochs"]),
    "backbone": ({**BASE, "originals": [{"backbone": "resnet", "trained_on": "digits"}]},
                 ["originals[0].backbone", "'resnet'", "known:", *list_backbones()]),
    "task": ({**BASE, "tasks": ["digits", "digit"]}, ["tasks[1]", "'digit'", "known:", "digits", "squares"]),
    "trained_on": ({**BASE, "originals": [{"backbone": "smallcnn", "trained_on": "fashion"}]},
                   ["originals[0].trained_on", "'fashion'", "known:", "fashion_mnist"]),
    "method_name": ({**BASE, "methods": [{"name": "arr"}]},
                    ["methods[0].name", "'arr'", "known: ar, blackbox, finetune, linear_probe, scratch"]),
    "epochs_type": ({**BASE, "hparams": {"epochs": "ten"}}, ["hparams.epochs", "integer", "'ten'"]),
    "seeds_type": ({**BASE, "seeds": "zero"}, ["seeds", "list", "'zero'"]),
    "seed_item_type": ({**BASE, "seeds": [0, "zero"]}, ["seeds.1", "integer", "'zero'"]),
    "lr_zero": ({**BASE, "hparams": {"lr": 0}}, ["hparams.lr", "greater than 0", "got 0"]),
    "lr_negative": ({**BASE, "hparams": {"lr": -1}}, ["hparams.lr", "greater than 0", "got -1"]),
    "epochs_zero": ({**BASE, "hparams": {"epochs": 0}}, ["hparams.epochs", "greater than or equal to 1"]),
    "batch_zero": ({**BASE, "methods": [{"name": "ar", "hparams": {"batch_size": 0}}]},
                   ["methods[0].hparams.batch_size", "greater than or equal to 1"]),
    "val_fraction": ({**BASE, "split": {"val_fraction": 1.5}}, ["split.val_fraction", "less than 1", "1.5"]),
    "enum": ({**BASE, "methods": [{"name": "ar", "mask": "center"}]},
             ["methods[0].mask", "'centre' or 'ones'", "'center'"]),
    "malformed_zip": ({**BASE, "methods": [{"name": "ar", "hparams": {"lr, epochs": [[0.1]]}}]},
                      ["methods[0].hparams.lr, epochs", "zipped", "[lr, epochs]"]),
    "empty_method_list": ({**BASE, "methods": [{"name": "ar", "lam": []}]}, ["methods[0].lam", "empty list"]),
    "empty_tasks": ({**BASE, "tasks": []}, ["tasks", "at least 1"]),
    "imagenet_on_smallcnn": ({**BASE, "originals": [{"backbone": "smallcnn", "weights": "imagenet"}]},
                             ["originals[0].weights", "smallcnn", "no imagenet weights"]),
    "invalid_yaml": ("originals: [\n  - a: b\nfoo: : :\n", ["not valid YAML", "at line 2"]),
    "yaml_list": ("- 1\n- 2\n", ["must be a YAML mapping", "originals", "tasks", "methods"]),
}


@pytest.mark.parametrize("case", list(BAD_GRIDS))
def test_bad_grid_is_one_line_naming_file_key_and_allowed(tmp_path, case):
    raw, expected = BAD_GRIDS[case]
    path = write(tmp_path, raw)
    with pytest.raises(GridError) as info:
        load_grid(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    for part in expected:
        assert part in message, (part, message)


def test_missing_grid_file_names_the_path_and_the_shipped_grids(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(GridError) as info:
        load_grid(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "no such grid file" in message and "demo" in message


def test_unknown_method_key_lists_hparams_as_allowed(tmp_path):
    raw = {**BASE, "methods": [{"name": "linear_probe", "hparms": {"lr": 0.1}}]}
    with pytest.raises(GridError) as info:
        load(tmp_path, raw)
    message = str(info.value)
    assert "methods[0].hparms" in message
    assert "hparams" in message.split("allowed:")[1]


def test_boolean_is_not_an_integer(tmp_path):
    with pytest.raises(GridError, match=r"hparams\.epochs"):
        load(tmp_path, {**BASE, "hparams": {"epochs": True}})


# --------------------------------------------------------------------------- through the CLI

CLI_CASES = [  # two subprocesses in all: each pays ~5 s of imports; main() in-process covers more below
    ("ls", {**BASE, "bogus": 1}),
    ("run", "originals: [\n  - a: b\nfoo: : :\n"),
]


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "REPROGBENCH_RESULTS")}
    env["REPROGBENCH_DATA"] = str(tmp_path / "data")
    return env


@pytest.mark.parametrize(("command", "raw"), CLI_CASES, ids=["ls-unknown-key", "run-bad-yaml"])
def test_cli_bad_grid_exits_2_with_one_line_and_writes_nothing(tmp_path, command, raw):
    grid = write(tmp_path, raw, "bad")
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "launch.cli", command, str(grid), "--results", str(results)],
        cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("reprogbench: error: ")
    assert str(grid) in lines[0]
    assert proc.stdout == ""
    assert not results.exists()
    assert not list(tmp_path.rglob("mlflow.db"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


@pytest.mark.parametrize(("argv", "raw"), [
    (["run"], {**BASE, "hparams": {"lr": 0}}),
    (["run", "--filter", "bogus=1"], BASE),
    (["ls"], {**BASE, "methods": [{"name": "ar", "mask": "center"}]}),
    (["cell"], {**BASE, "tasks": ["digit"]}),
])
def test_cli_main_rejects_bad_input_with_status_2(tmp_path, monkeypatch, capsys, argv, raw):
    from launch.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPROGBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    grid = write(tmp_path, raw, "bad")
    results = tmp_path / "results"
    extra = ["0123456789ab"] if argv == ["cell"] else []
    assert main([argv[0], str(grid), *extra, "--results", str(results), *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("reprogbench: error: "), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


# --------------------------------------------------------------------------- expansion


def test_list_values_expand_as_a_cartesian_product(tmp_path):
    raw = {**BASE, "tasks": ["digits", "squares"], "seeds": [0, 1],
           "methods": [{"name": "ar", "input_size": 16, "lam": [0, 1.0e-4], "hparams": {"lr": [1.0e-3, 1.0e-2]}}]}
    grid = load(tmp_path, raw)
    assert grid.skipped == []
    ar = of(grid, "ar")
    combos = {(c.spec["method"]["lam"], c.spec["hparams"]["lr"], c.task, c.seed) for c in ar}
    assert len(ar) == 16 and len(combos) == 16
    assert combos == {(lam, lr, t, s) for lam in (0.0, 1e-4) for lr in (1e-3, 1e-2)
                      for t in ("digits", "squares") for s in (0, 1)}
    assert len(grid.cells) == 17  # + the one pretrain cell


def test_grid_wide_hparams_lists_expand(tmp_path):
    # an ImageNet original: no pretrain cell
    raw = {**BASE, "originals": [{"backbone": "resnet18", "weights": "imagenet"}],
           "hparams": {"lr": [1.0e-3, 1.0e-2], "batch_size": [32, 64]}}
    ar = of(load(tmp_path, raw), "ar")
    assert {(c.spec["hparams"]["lr"], c.spec["hparams"]["batch_size"]) for c in ar} == {
        (1e-3, 32), (1e-3, 64), (1e-2, 32), (1e-2, 64)}


def test_grid_wide_hparams_lists_expand_with_a_pretrained_original(tmp_path):
    raw = {**BASE, "hparams": {"lr": [1.0e-3, 1.0e-2]}}
    grid = load(tmp_path, raw)
    assert sorted(c.spec["hparams"]["lr"] for c in of(grid, "ar")) == [1e-3, 1e-2]
    assert len(of(grid, "pretrain")) >= 1


def test_zipped_keys_give_one_cell_per_row_not_the_product(tmp_path):
    raw = {**BASE, "methods": [{
        "name": "ar", "mask, combine": [["centre", "add"], ["ones", "multiply"], ["ones", "subtract"]],
        "hparams": {"lr, epochs": [[0.05, 1], [0.001, 2]]},
    }]}
    ar = of(load(tmp_path, raw), "ar")
    pairs = {(c.spec["method"]["mask"], c.spec["method"]["combine"], c.spec["hparams"]["lr"],
              c.spec["hparams"]["epochs"]) for c in ar}
    assert len(ar) == 6  # 3 rows x 2 rows, not 2^2 x 2^2
    assert pairs == {(m, c, lr, e) for m, c in [("centre", "add"), ("ones", "multiply"), ("ones", "subtract")]
                     for lr, e in [(0.05, 1), (0.001, 2)]}


def test_zipped_keys_in_grid_wide_hparams(tmp_path):
    raw = {**BASE, "originals": [{"backbone": "resnet18", "weights": "imagenet"}],
           "hparams": {"lr, batch_size": [[0.1, 16], [0.01, 32]]}}
    ar = of(load(tmp_path, raw), "ar")
    assert {(c.spec["hparams"]["lr"], c.spec["hparams"]["batch_size"]) for c in ar} == {(0.1, 16), (0.01, 32)}


def test_docstring_example_zips_mask_with_combine(tmp_path):
    """The example in bench/config.py's docstring (and the README) works as written."""
    raw = {**BASE, "methods": [{"name": "ar", "mask, combine": [["centre", "add"], ["ones", "multiply"]]}]}
    ar = of(load(tmp_path, raw), "ar")
    assert {(c.spec["method"]["mask"], c.spec["method"]["combine"]) for c in ar} == {("centre", "add"),
                                                                                    ("ones", "multiply")}


def test_zip_and_product_combine_inside_a_method_entry(tmp_path):
    raw = {**BASE, "methods": [{"name": "ar", "mask, combine": [["centre", "add"], ["ones", "subtract"]],
                                "lam": [0.0, 1.0e-4], "hparams": {"lr": [0.05, 0.001]}}]}
    ar = of(load(tmp_path, raw), "ar")
    assert len(ar) == 2 * 2 * 2
    assert {c.spec["hparams"]["lr"] for c in ar} == {0.05, 0.001}


def test_pretrain_cells_come_first_and_reprogramming_cells_depend_on_them(tmp_path):
    raw = {**BASE, "tasks": ["digits", "squares"],
           "methods": [{"name": "linear_probe"}, {"name": "ar", "input_size": 16}, {"name": "scratch"}]}
    grid = load(tmp_path, raw)
    (pretrain,) = of(grid, "pretrain")
    assert grid.cells[0] is pretrain
    assert pretrain.task == "digits" and pretrain.depends_on == () and pretrain.spec["original"] is None
    for cell in of(grid, "ar") + of(grid, "linear_probe"):
        assert cell.depends_on == (pretrain.cell_id,)
        assert cell.spec["original"] == {"trained_on": "digits", "weights": None, "pretrain_cell": pretrain.cell_id}
    assert len(grid.cells) == 1 + 2 * 3
    assert set(grid.by_id()) == {c.cell_id for c in grid.cells}


def test_scratch_does_not_depend_on_the_original_and_is_shared_by_originals_of_one_backbone(tmp_path):
    raw = {**BASE, "originals": [{"backbone": "smallcnn", "trained_on": "digits"},
                                 {"backbone": "smallcnn", "trained_on": "fashion_mnist"}],
           "methods": [{"name": "ar"}, {"name": "scratch"}]}
    grid = load(tmp_path, raw)
    assert len(of(grid, "pretrain")) == 2
    assert {c.trained_on for c in of(grid, "ar")} == {"digits", "fashion_mnist"}
    (scratch,) = of(grid, "scratch")
    assert scratch.depends_on == () and scratch.spec["original"] is None and scratch.trained_on is None


def test_imagenet_original_makes_no_pretrain_cell(tmp_path):
    raw = {**BASE, "originals": [{"backbone": "resnet18", "weights": "imagenet"}],
           "methods": [{"name": "ar"}, {"name": "linear_probe"}]}
    grid = load(tmp_path, raw)
    assert of(grid, "pretrain") == []
    assert len(grid.cells) == 2
    for cell in grid.cells:
        assert cell.depends_on == ()
        assert cell.spec["original"] == {"trained_on": "imagenet", "weights": "imagenet", "pretrain_cell": None}
        assert cell.spec["backbone"] == {"name": "resnet18", "input_size": 224}


def test_skip_hook_lists_a_senseless_combination_instead_of_running_it(tmp_path):
    raw = {**BASE, "methods": [{"name": "ar", "combine": ["add", "multiply"]}]}
    grid = load(tmp_path, raw)
    assert [c.spec["method"]["combine"] for c in of(grid, "ar")] == ["add"]
    (skipped,) = grid.skipped
    assert skipped.spec["method"]["combine"] == "multiply" and skipped.spec["method"]["mask"] == "centre"
    assert "multipl" in skipped.skip_reason and "mask=ones" in skipped.skip_reason
    assert skipped.cell_id not in grid.by_id()


def test_skip_hook_rejects_more_target_classes_than_source(tmp_path):
    grid = load(tmp_path, {**BASE, "tasks": ["digits", "cifar100"]})
    assert [c.task for c in of(grid, "ar")] == ["digits"]
    assert [c.task for c in grid.skipped] == ["cifar100"]
    assert "100" in grid.skipped[0].skip_reason


def test_skip_hook_sees_the_originals_input_size(tmp_path):
    raw = {**BASE, "originals": [{"backbone": "smallcnn", "trained_on": "digits", "input_size": 8}]}
    grid = load(tmp_path, raw)
    assert of(grid, "ar") == []
    assert len(grid.skipped) == 1 and "canvas" in grid.skipped[0].skip_reason


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


# --------------------------------------------------------------------------- cell_id


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


# --------------------------------------------------------------------------- fallback and names


def test_demo_falls_back_to_digits_when_fashion_mnist_is_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("REPROGBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("REPROGBENCH_DEBIAN_FASHION_MNIST", str(tmp_path / "no-debian"))
    grid = load_grid("demo")
    (pretrain,) = of(grid, "pretrain")
    assert pretrain.task == "digits"
    assert {c.trained_on for c in grid.cells if c.spec["original"]} == {"digits"}
    assert len(grid.notes) == 1
    assert "fashion_mnist" in grid.notes[0] and "digits" in grid.notes[0]
    assert not (tmp_path / "data").exists()  # checking availability writes nothing


@pytest.mark.skipif(not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_demo_pretrains_on_fashion_mnist_when_debian_files_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("REPROGBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("REPROGBENCH_DEBIAN_FASHION_MNIST", raising=False)
    grid = load_grid("demo")
    (pretrain,) = of(grid, "pretrain")
    assert pretrain.task == "fashion_mnist" and grid.notes == []
    assert pretrain.name == "pretrain smallcnn on fashion_mnist seed0"
    names = [c.name for c in grid.cells]
    assert "linear_probe fashion_mnist/smallcnn -> digits seed0" in names
    assert "scratch smallcnn -> squares seed0" in names


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
