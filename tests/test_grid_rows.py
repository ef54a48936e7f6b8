"""Grids shaped like the thesis's tables: (original, task) rows instead of a product, per-original method
parameters, architectures trained from scratch only, a learned label mapping, and the thesis figure per cell."""
from __future__ import annotations

import pytest
import torch

from bench.grid import GridError, load_grid
from bench.reference import reference_figure
from bench.train import TrainContext, run_cell

ROWS = """
name: rows
reference: thesis_table_3_1
originals:
  - {backbone: test_tinycnn, trained_on: digits, tasks: [squares], method_params: {ar: {mask: ones}}}
  - {backbone: smallcnn, trained_on: fashion_mnist, tasks: [mnist_01, digits], method_params: {ar: {input_size: 16}}}
  - {backbone: smallcnn_rgb, methods: [scratch]}
tasks: [squares, mnist_01, digits]
methods:
  - {name: ar}
  - {name: scratch}
hparams: {epochs: 1}
"""


def grid_of(tmp_path, text, name="rows"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_grid(path)


def test_originals_pair_only_with_their_tasks_and_methods(tmp_path):
    grid = grid_of(tmp_path, ROWS)
    ar = {(c.trained_on, c.backbone, c.task) for c in grid.cells if c.method == "ar"}
    assert ar == {("digits", "test_tinycnn", "squares"), ("fashion_mnist", "smallcnn", "mnist_01"),
                  ("fashion_mnist", "smallcnn", "digits")}
    scratch = {(c.backbone, c.task) for c in grid.cells if c.method == "scratch"}
    # scratch goes with every original's architecture for its tasks; the scratch-only one for every task
    assert ("smallcnn_rgb", "squares") in scratch and ("smallcnn_rgb", "digits") in scratch
    assert all(c.method != "ar" or c.backbone != "smallcnn_rgb" for c in grid.cells)
    pretrains = {c.task for c in grid.cells if c.method == "pretrain"}
    assert pretrains == {"digits", "fashion_mnist"}  # nothing to pretrain for the scratch-only architecture


def test_method_params_apply_to_their_original_only(tmp_path):
    grid = grid_of(tmp_path, ROWS)
    sizes = {(c.backbone, c.task): c.spec["method"]["input_size"] for c in grid.cells if c.method == "ar"}
    assert sizes[("smallcnn", "mnist_01")] == 16 and sizes[("smallcnn", "digits")] == 16
    assert sizes[("test_tinycnn", "squares")] is None
    masks = {c.backbone: c.spec["method"]["mask"] for c in grid.cells if c.method == "ar"}
    assert masks == {"test_tinycnn": "ones", "smallcnn": "centre"}


@pytest.mark.parametrize("bad, needle", [
    ("tasks: [squares], method_params", "not among the grid's tasks"),
    ("methods: [warp], method_params", "unknown method 'warp'"),
])
def test_bad_rows_are_one_line_errors(tmp_path, bad, needle):
    text = ROWS.replace("tasks: [squares], method_params", bad.replace("squares", "cifar10"), 1)
    with pytest.raises(GridError, match=needle) as err:
        grid_of(tmp_path, text)
    assert "\n" not in str(err.value)


def test_an_unknown_reference_table_is_rejected(tmp_path):
    with pytest.raises(GridError, match="unknown reference table 'table_9'; known: thesis_table_3_1"):
        grid_of(tmp_path, ROWS.replace("reference: thesis_table_3_1", "reference: table_9"))


def test_reference_figures_come_from_the_thesis_tables(tmp_path):
    grid = grid_of(tmp_path, ROWS.replace("tasks: [mnist_01, digits]", "tasks: [mnist_01]"))
    by = {(c.method, c.trained_on, c.task): c for c in grid.cells}
    assert reference_figure("thesis_table_3_1", by[("ar", "fashion_mnist", "mnist_01")]) == {
        "train_acc": 42.82, "test_acc": 43.83, "source": "thesis Table 3.1"}
    pretrain = next(c for c in grid.cells if c.method == "pretrain" and c.task == "fashion_mnist")
    assert reference_figure("thesis_table_3_1", pretrain)["test_acc"] == 89.40  # footnote 5
    assert reference_figure("thesis_table_3_1", by[("ar", "digits", "squares")]) is None  # not a thesis row
    assert reference_figure(None, pretrain) is None


def test_ls_shows_the_thesis_figure(tmp_path, capsys):
    from launch.cli import main

    path = tmp_path / "rows.yaml"
    path.write_text(ROWS)
    assert main(["ls", str(path), "--results", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "thesis test %" in out and "43.83" in out and "89.4" in out


def test_learned_label_map_trains_and_is_checkpointed_with_the_program(tmp_path):
    text = """
name: learned
originals: [{backbone: test_tinycnn, trained_on: digits_01, hparams: {epochs: 1}}]
tasks: [digits]
methods: [{name: ar, label_map: learned, hparams: {lr: 0.05}}]
hparams: {epochs: 2, batch_size: 64}
"""
    grid = grid_of(tmp_path, text, "learned")
    # a learned mapping needs no more source classes than new ones: 2 -> 10 is allowed
    assert not grid.skipped and [c.method for c in grid.cells] == ["pretrain", "ar"]
    pretrain, ar = grid.cells
    run_cell(pretrain, tmp_path / "p")
    record = run_cell(ar, tmp_path / "ar", TrainContext(dependency_dirs={pretrain.cell_id: tmp_path / "p"}))
    best = torch.load(tmp_path / "ar" / "checkpoint.pt", weights_only=True)["best"]["learned"]
    assert {"program.W", "label_map.weight", "label_map.bias"} <= set(best)
    assert best["label_map.weight"].shape == (10, 2)
    assert record.parameters.trainable == 16 * 16 + 10 * 2 + 10
    assert record.metrics.test_acc > 10.0  # learns something beyond chance over 10 classes


def test_the_experiment_2_grid_has_every_tweak_beside_the_untweaked_method():
    grid = load_grid("thesis_experiment_2")
    ar = [c for c in grid.cells if c.method == "ar"]
    rows = {(c.trained_on, c.task) for c in ar}
    assert rows == {(o, t) for o in ("fashion_mnist", "cifar10") for t in ("mnist", "mnist_01")}
    variants = {(m["input_size"], m["label_map"], m["mask"], m["combine"]) for m in (c.spec["method"] for c in ar)}
    assert variants == {(20, "first_k", "centre", "add"), (20, "learned", "centre", "add"),
                        (4, "first_k", "centre", "add"), (20, "first_k", "ones", "add"),
                        (20, "first_k", "ones", "multiply"), (20, "first_k", "centre", "subtract")}
    assert len(ar) == 6 * 4 and not grid.skipped
    assert sorted(c.task for c in grid.cells if c.method == "pretrain") == ["cifar10", "fashion_mnist"]


def test_the_table_3_1_grid_has_all_ten_thesis_rows_each_with_its_figure():
    import csv

    from bench.reference import REFERENCE_DIR

    grid = load_grid("thesis_table_3_1")
    lines = (REFERENCE_DIR / "thesis_table_3_1.csv").read_text().splitlines()
    thesis = {(r["original_task"], r["new_task"]): float(r["test_acc"])
              for r in csv.DictReader(line for line in lines if not line.startswith("#"))}
    ar = {(c.trained_on, c.task): reference_figure(grid.reference, c)["test_acc"]
          for c in grid.cells if c.method == "ar"}
    assert ar == thesis and len(ar) == 10 and not grid.skipped
    assert all(c.backbone == "resnet50v2" for c in grid.cells if c.trained_on == "imagenet")


def test_running_table_3_1_without_its_data_stops_before_any_cell(tmp_path, capsys):
    from launch.cli import main

    results = tmp_path / "results"
    code = main(["run", "thesis_table_3_1", "--results", str(results), "--data-root", str(tmp_path / "empty"),
                 "--no-tracking"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "reprogbench prepare" in err[0]
    assert not results.exists() or not any(results.rglob("result.json"))


def test_the_table_5_1_pytorch_grid_has_every_runnable_row_and_names_the_others(capsys):
    import csv

    from bench.models.thesis_nets import THESIS_BACKBONES
    from bench.reference import REFERENCE_DIR
    from launch.cli import main

    grid = load_grid("thesis_table_5_1_pytorch")
    assert grid.name == "thesis_table_5_1_pytorch"  # originals' method lists must not rename the grid
    lines = (REFERENCE_DIR / "thesis_table_5_1.csv").read_text().splitlines()
    thesis = {r["backbone"]: r for r in csv.DictReader(line for line in lines if not line.startswith("#"))}
    runnable = {keras: ours for keras, (ours, _) in THESIS_BACKBONES.items() if ours}
    for cell in grid.cells:
        assert cell.spec["hparams"] == {"optimizer": "adam", "lr": 1.0e-3, "batch_size": 128, "epochs": 10,
                                        "weight_decay": 0.0, "momentum": 0.9}
    probes = {(c.backbone, c.task): reference_figure(grid.reference, c)["test_acc"]
              for c in grid.cells if c.method == "linear_probe"}
    expected = {(ours, task): float(thesis[keras][f"{column}_test"])
                for keras, ours in runnable.items()
                for task, column in (("caltech101", "caltech101"), ("caltech256_reduced", "caltech256r"))}
    assert probes == expected and len(probes) == 12
    scratch = {c.task: reference_figure(grid.reference, c)["test_acc"] for c in grid.cells if c.method == "scratch"}
    assert scratch == {"caltech101": float(thesis["from_scratch"]["caltech101_test"]),
                       "caltech256_reduced": float(thesis["from_scratch"]["caltech256r_test"])}
    assert len(grid.cells) == 14 and not grid.skipped
    assert set(grid.not_run) == {k for k, (ours, _) in THESIS_BACKBONES.items() if ours is None}

    assert main(["ls", "thesis_table_5_1_pytorch"]) == 0
    out = capsys.readouterr().out
    assert "thesis_table_5_1_pytorch: 14 cells" in out
    assert "not run: thesis_table_5_1 row ResNet152V2" in out and "not run: thesis_table_5_1 row NASNetMobile" in out


def thesis_figures() -> dict:
    import csv

    from bench.reference import REFERENCE_DIR

    lines = (REFERENCE_DIR / "thesis_table_5_1.csv").read_text().splitlines()
    return {r["backbone"]: r for r in csv.DictReader(line for line in lines if not line.startswith("#"))}


@pytest.mark.parametrize("name, caltech101, scratch, mobilenet_features", [
    ("thesis_table_5_1", "caltech101_thesis", "thesis_cnn", "logits"),  # as the thesis's code ran it
    ("thesis_table_5_1_corrected", "caltech101", "smallcnn_rgb", None),  # today's choices
])
def test_the_table_5_1_grids_run_all_eight_keras_models_as_published_and_correctly(
        capsys, name, caltech101, scratch, mobilenet_features):
    from bench.models.thesis_nets import THESIS_BACKBONES
    from launch.cli import main

    grid = load_grid(name)
    thesis = thesis_figures()
    assert not grid.not_run and not grid.skipped and len(grid.cells) == 8 * 2 * 2 + 2
    probes = [c for c in grid.cells if c.method == "linear_probe"]
    kinds = {(c.backbone, c.task, c.spec["backbone"].get("preprocessing")) for c in probes}
    assert kinds == {(f"keras:{keras}", task, p) for keras in THESIS_BACKBONES for p in (None, "thesis")
                     for task in (caltech101, "caltech256_reduced")}
    for c in probes:  # both kinds of cell carry the thesis's figure of their backbone
        column = "caltech256r" if c.task == "caltech256_reduced" else "caltech101"
        assert reference_figure(grid.reference, c)["test_acc"] == float(thesis[c.backbone[6:]][f"{column}_test"])
        # only Keras MobileNet's layers[-2] is its logits; every other model's is the pooled features
        want = mobilenet_features if c.backbone == "keras:MobileNet" else None
        assert c.spec["method"].get("features") == want, c.backbone
    scratch_cells = [c for c in grid.cells if c.method == "scratch"]
    assert {c.backbone for c in scratch_cells} == {scratch}
    assert {c.spec["backbone"].get("input_size") for c in scratch_cells} == {224 if scratch == "thesis_cnn" else 64}
    assert main(["ls", name]) == 0
    out = capsys.readouterr().out
    assert f"{name}: 34 cells" in out and "not run" not in out
    nasnet = [line for line in out.splitlines() if "keras:NASNetMobile" in line and f"{caltech101} " in line]
    assert len(nasnet) == 2 and all(line.rstrip().endswith("82.73") for line in nasnet)
    assert sum("imagenet[preprocessing=thesis]/keras:NASNetMobile" in line for line in nasnet) == 1


def test_preprocessing_is_in_the_cell_id_only_when_given(tmp_path):
    from bench.grid import load_grid as load

    base = ("originals:\n  - {backbone: test_tinycnn, trained_on: digits}\n"
            "tasks: [digits_0to4]\nmethods: [{name: linear_probe}]\n")
    (tmp_path / "plain.yaml").write_text(base)
    assert "preprocessing" not in load(tmp_path / "plain.yaml").cells[-1].spec["backbone"]
    (tmp_path / "bad.yaml").write_text(base.replace("trained_on: digits", "trained_on: digits, preprocessing: thesis"))
    with pytest.raises(GridError) as e:
        load(tmp_path / "bad.yaml")
    assert "\n" not in str(e.value) and "originals[0].preprocessing" in str(e.value)
    assert "has no preprocessing 'thesis'" in str(e.value)


@pytest.mark.parametrize("name, cells", [("demo", None), ("thesis_table_3_1", 14), ("thesis_experiment_2", 26),
                                         ("thesis_table_5_1", 34), ("thesis_table_5_1_corrected", 34),
                                         ("thesis_table_5_1_pytorch", 14)])
def test_every_shipped_grid_loads_and_expands(name, cells):
    from bench.grid import GRIDS_DIR

    assert (GRIDS_DIR / f"{name}.yaml").is_file()
    grid = load_grid(name)
    assert grid.name == name and grid.cells and not grid.skipped
    if cells is not None:
        assert len(grid.cells) == cells
    ids = [c.cell_id for c in grid.cells]
    assert len(set(ids)) == len(ids)
    position = {c.cell_id: i for i, c in enumerate(grid.cells)}
    assert all(position[d] < position[c.cell_id] for c in grid.cells for d in c.depends_on)  # dependencies first


def test_no_shipped_grid_is_left_untested():
    from bench.grid import GRIDS_DIR

    # methods: tests/test_methods_later.py (its ImageNet cells are skipped where the weights are absent);
    # vp_resnet18, vp_clip: tests/test_vp_grids.py
    tested = {"demo", "thesis_table_3_1", "thesis_experiment_2", "thesis_table_5_1", "thesis_table_5_1_corrected",
              "thesis_table_5_1_pytorch",
              "methods", "vp_resnet18", "vp_clip"}
    assert {p.stem for p in GRIDS_DIR.glob("*.yaml")} == tested


def test_the_table_3_1_fashion_mnist_to_mnist_01_row_runs_end_to_end_pretrain_included(tmp_path, capsys):
    """The thesis's row as shipped (method, mask, input size, label map, split), on the real Fashion-MNIST from
    Debian and MNIST files written in the IDX format; only epochs and the training-set size are cut for CI."""
    import json

    import yaml
    from fixtures_data import write_mnist_idx

    from bench.files import cell_dir
    from bench.grid import GRIDS_DIR
    from bench.record import read_record
    from launch.cli import main

    raw = yaml.safe_load((GRIDS_DIR / "thesis_table_3_1.yaml").read_text())
    raw["hparams"] = {**raw["hparams"], "epochs": 2}
    raw["split"] = {**raw["split"], "max_train": 1000}
    path = tmp_path / "thesis_table_3_1.yaml"
    path.write_text(yaml.safe_dump(raw))
    data, results = tmp_path / "data", tmp_path / "results"
    written = write_mnist_idx(data, n_train=600, n_test=200)

    args = ["run", str(path), "--filter", "task=mnist_01", "--filter", "original=fashion_mnist",
            "--data-root", str(data), "--results", str(results), "--no-tracking"]
    assert main(args) == 0
    grid = load_grid(path, data_root=data)
    ar = next(c for c in grid.cells if c.method == "ar" and c.trained_on == "fashion_mnist" and c.task == "mnist_01")
    pretrain = grid.by_id()[ar.depends_on[0]]
    assert pretrain.method == "pretrain" and pretrain.task == "fashion_mnist"
    done = {p.parent.name for p in results.rglob("result.json")}
    assert done == {ar.cell_id, pretrain.cell_id}  # the row and its original, nothing else

    original = read_record(cell_dir(results, grid.name, pretrain.cell_id))
    assert original.metrics.test_acc > 50.0  # real Fashion-MNIST: a working original model (chance is 10%)
    assert original.split["sizes"]["test"] == 10_000  # the official test set, read once

    row = read_record(cell_dir(results, grid.name, ar.cell_id))
    assert row.depends_on == [pretrain.cell_id] and row.spec["method"]["input_size"] == 20
    zeros_ones = int(((written.test_labels == 0) | (written.test_labels == 1)).sum())
    assert row.split["sizes"]["test"] == zeros_ones  # MNIST 0/1: only the two classes, from the IDX files
    assert row.parameters.trainable == 28 * 28  # only the program learns (one channel, 28x28 canvas)
    assert 0.0 <= row.metrics.test_acc <= 100.0
    assert json.dumps(row.metrics.model_dump())  # finite, serialisable

    assert main(args) == 0  # a rerun finds both done and runs nothing
    assert "0 cell(s) run, 2 already done" in capsys.readouterr().out
    assert main(["ls", str(path), "--results", str(results), "--data-root", str(data),
                 "--filter", "task=mnist_01", "--filter", "original=fashion_mnist"]) == 0
    listing = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line[:12].isalnum()}
    assert listing[ar.cell_id].split()[1] == "done"
    assert float(listing[ar.cell_id].split()[-1]) == 43.83  # thesis Table 3.1
    assert float(listing[pretrain.cell_id].split()[-1]) == 89.40  # thesis footnote: the Fashion-MNIST original


def test_every_published_row_is_listed_in_the_thesis_order_and_each_cell_finds_its_own():
    from bench.reference import reference_rows, row_key, thesis_params

    rows = reference_rows("thesis_table_5_1")
    table = [r for r in rows if r.key[0] == "thesis_table_5_1"]
    assert len(table) == 2 * 9  # nine Keras backbones (from_scratch included) on two datasets
    assert [r.name for r in table[:9]] == ["ResNet50V2", "ResNet101V2", "ResNet152V2", "MobileNet", "NASNetMobile",
                                          "MobileNetV2", "VGG16", "VGG19", "from_scratch"]
    # the panels name our dataset that is the thesis's own column: its Caltech-101 is the 97-class subset
    assert {r.panel for r in table} == {"caltech101_thesis", "caltech256_reduced"}
    assert {r.key[3] for r in table} == {"caltech101", "caltech256r"}  # keyed by the thesis's column
    grid = load_grid("thesis_table_5_1_pytorch")
    keys = {row_key(grid.reference, c) for c in grid.cells}
    assert len(keys) == len(grid.cells) and keys <= {r.key for r in table}  # one row per cell, all published
    assert {r.name for r in table if r.key not in keys} == set(grid.not_run)  # the rest: said why
    keras = load_grid("thesis_table_5_1")  # every row; two cells (as published, and correctly) per backbone row
    keys = [row_key(keras.reference, c) for c in keras.cells]
    assert set(keys) == {r.key for r in table} and not keras.not_run
    assert all(keys.count(r.key) == (1 if r.name == "from_scratch" else 2) for r in table)

    grid_3_1 = load_grid("thesis_table_3_1")
    assert all(c.reference == "thesis_table_3_1" for c in grid_3_1.cells)
    pretrain = next(c for c in grid_3_1.cells if c.method == "pretrain" and c.task == "fashion_mnist")
    assert thesis_params(pretrain) == {"thesis.train_acc": 99.99, "thesis.test_acc": 89.40,
                                       "thesis.source": "thesis Table 3.1 footnotes 3-6"}
    assert thesis_params(next(c for c in load_grid("demo").cells)) == {}  # no reference: no figure
