"""A grid that cannot run is one GridError line naming the file, the key and what is allowed; through the CLI it
exits 2 and writes nothing."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_grids import BASE, load, write

from bench.grid import GridError, load_grid
from bench.models import list_backbones

BAD_GRIDS = {  # id -> (grid, substrings the one-line message must contain: the key, then what is allowed)
    "top_level_key": ({**BASE, "bogus": 1},
                      ["bogus", "unknown key", "allowed:", "originals", "tasks", "methods", "hparams", "seeds"]),
    "hparams_key": ({**BASE, "hparams": {"lrr": 0.1}},
                    ["hparams.lrr", "unknown key", "optimizer", "lr", "batch_size", "epochs"]),
    "method_key": ({**BASE, "methods": [{"name": "ar", "maks": "centre"}]},
                   ["methods[0].maks", "unknown key", "mask", "combine", "label_map", "lam", "input_size"]),
    "lr_milestones": ({**BASE, "hparams": {"epochs": 3, "lr_milestones": "2/1"}},
                      ["lr_milestones", "'2/1'", "increasing epochs between 1 and epochs - 1 (2)", "100/144"]),
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
    "probe_features": ({**BASE, "methods": [{"name": "linear_probe", "features": "pooled"}]},
                       ["methods[0].features", "'penultimate' or 'logits'", "'pooled'"]),
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
