"""A grid's expansion: cartesian products and zipped keys, cells that make an original first and the cells that
depend on them, and the methods' skip hooks."""
from __future__ import annotations

from fixtures_grids import BASE, load, of


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
    """The example in bench/grid/combinations.py's docstring (and the README) works as written."""
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
