"""The fast paths give what the naive paths give: packed cells train as they do alone, cached features train
the head the per-epoch backbone pass trains, the frozen backbone receives no gradient; and a pack survives
one member's divergence. Real trainer, real data (scikit-learn's digits), in-process."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from bench.data import dataset_info
from bench.files import CHECKPOINT, MODEL, RESULT, cell_dir
from bench.grid import load_grid
from bench.pack import Pack, pack_key
from bench.record import read_record
from bench.train import TrainContext, TrainOptions, run_cell, run_pack
from bench.train.models import build_models
from launch.local import RunSettings, execute_pack, plan_packs

GRID = """
name: fast
originals:
  - {backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 2}}
tasks: [digits]
methods:
  - {name: ar, lam: [0.0, 1.0e-3], label_map: [first_k, random], hparams: {lr: 0.05}}
  - {name: linear_probe}
hparams: {batch_size: 64, epochs: 3}
seeds: [0, 1]
"""


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    root = tmp_path_factory.mktemp("fast")
    path = root / "fast.yaml"
    path.write_text(GRID)
    grid = load_grid(path)
    pretrain = next(c for c in grid.cells if c.method == "pretrain")
    source = root / "pretrain"
    run_cell(pretrain, source)
    return {"grid": grid, "root": root, "deps": {pretrain.cell_id: source}, "pretrain": pretrain}


def cells_of(grid, method):
    return [c for c in grid["grid"].cells if c.method == method]


def learned_state(directory):
    return torch.load(directory / CHECKPOINT, weights_only=True)["best"]["learned"]


def test_packed_cells_give_the_programs_they_give_alone(grid, tmp_path):
    everything = cells_of(grid, "ar")
    assert len(everything) == 8 and len({pack_key(c) for c in everything}) == 1
    cells = everything[:4]  # both seeds, both label maps
    assert len({(c.seed, c.spec["method"]["label_map"]) for c in cells}) == 4
    packed_dirs = [tmp_path / "packed" / c.cell_id for c in cells]
    packed = run_pack(cells, packed_dirs, TrainContext(dependency_dirs=grid["deps"]))
    for cell, directory, rec in zip(cells, packed_dirs, packed, strict=True):
        alone_dir = tmp_path / "alone" / cell.cell_id
        alone = run_cell(cell, alone_dir, TrainContext(dependency_dirs=grid["deps"]))
        assert (rec.pack.size, rec.pack.cells) == (4, [c.cell_id for c in cells]) and alone.pack.size == 1
        for key, value in learned_state(alone_dir).items():
            torch.testing.assert_close(learned_state(directory)[key], value, atol=1e-5, rtol=1e-4)
        assert learned_state(alone_dir)["W"].abs().sum() > 0  # the program did train
        assert [r.val_acc for r in rec.history] == pytest.approx([r.val_acc for r in alone.history])
        assert rec.metrics.test_acc == pytest.approx(alone.metrics.test_acc)
        assert rec.metrics.best_epoch == alone.metrics.best_epoch
    # seeds and label maps differ, so the packed programs differ from one another
    assert not torch.equal(learned_state(packed_dirs[0])["W"], learned_state(packed_dirs[1])["W"])


def test_cached_features_train_the_head_the_naive_path_trains(grid, tmp_path):
    cell = cells_of(grid, "linear_probe")[0]
    cached = run_cell(cell, tmp_path / "cached", TrainContext(dependency_dirs=grid["deps"]))
    naive = run_cell(cell, tmp_path / "naive",
                     TrainContext(dependency_dirs=grid["deps"], options=TrainOptions(cache_features=False)))
    assert cached.timing.features_s > 0 and naive.timing.features_s == 0
    for key, value in learned_state(tmp_path / "naive").items():
        torch.testing.assert_close(learned_state(tmp_path / "cached")[key], value, atol=1e-5, rtol=1e-4)
    assert [r.train_loss for r in cached.history] == pytest.approx([r.train_loss for r in naive.history],
                                                                          rel=1e-5)
    assert cached.metrics.test_acc == pytest.approx(naive.metrics.test_acc)


def test_packed_linear_probes_share_one_feature_pass(grid, tmp_path):
    cells = cells_of(grid, "linear_probe")
    dirs = [tmp_path / c.cell_id for c in cells]
    records = run_pack(cells, dirs, TrainContext(dependency_dirs=grid["deps"]))
    for cell, rec in zip(cells, records, strict=True):
        alone = run_cell(cell, tmp_path / "alone" / cell.cell_id, TrainContext(dependency_dirs=grid["deps"]))
        assert rec.metrics.test_acc == pytest.approx(alone.metrics.test_acc)
        assert rec.pack.size == 2


def test_the_frozen_backbone_gets_no_gradient_and_keeps_its_weights(grid, tmp_path, monkeypatch):
    import bench.train.setup as train

    built = []
    real = train.build_models
    monkeypatch.setattr(train, "build_models", lambda *a, **k: built.extend(real(*a, **k)) or built[-len(a[0]):])
    cells = cells_of(grid, "ar")[:3]
    run_pack(cells, [tmp_path / c.cell_id for c in cells], TrainContext(dependency_dirs=grid["deps"]))
    backbone = built[0].backbone
    assert all(m.backbone is backbone for m in built)  # one shared object, not K copies
    assert all(not p.requires_grad and p.grad is None for p in backbone.parameters())
    assert not backbone.training
    original = torch.load(grid["deps"][grid["pretrain"].cell_id] / MODEL, weights_only=True)
    for key, value in original.items():
        assert torch.equal(backbone.state_dict()[key], value), key


def test_a_diverging_cell_fails_alone_and_its_pack_mates_finish(grid, tmp_path):
    cells = cells_of(grid, "ar")[:3]
    # huge SGD steps on a lam > 0 program: W overflows, lam * |W|^2 becomes inf at once
    bad_spec = {**cells[1].spec, "hparams": {**cells[1].spec["hparams"], "optimizer": "sgd", "lr": 1e30},
                "method": {**cells[1].spec["method"], "lam": 1.0}}
    bad = dataclasses.replace(cells[1], spec=bad_spec, cell_id="deadbeef0001")
    pack = [cells[0], bad, cells[2]]
    assert len({pack_key(c) for c in pack}) == 1
    settings = RunSettings(results_root=tmp_path, data_root=None, tracking_uri=None)
    for cell in pack[::2]:  # pack-mates know their pretrain cell by the grid's layout
        dep = cell_dir(tmp_path, cell.grid, grid["pretrain"].cell_id)
        dep.mkdir(parents=True, exist_ok=True)
        (dep / MODEL).write_bytes((grid["deps"][grid["pretrain"].cell_id] / MODEL).read_bytes())
    outcomes = {o.cell.cell_id: o for o in execute_pack(pack, settings)}
    assert outcomes[bad.cell_id].status == "failed" and "diverged" in outcomes[bad.cell_id].message
    assert read_record(cell_dir(tmp_path, "fast", bad.cell_id)).failed
    for cell in pack[::2]:
        assert outcomes[cell.cell_id].status == "done"
        rec = read_record(cell_dir(tmp_path, "fast", cell.cell_id))
        alone = run_cell(cell, tmp_path / "alone" / cell.cell_id, TrainContext(dependency_dirs=grid["deps"]))
        assert rec.metrics.test_acc == pytest.approx(alone.metrics.test_acc)
        assert (cell_dir(tmp_path, "fast", cell.cell_id) / RESULT).is_file()


def test_plan_packs_groups_by_key_and_checkpoint_epoch_and_caps_the_size(grid, tmp_path):
    ar = cells_of(grid, "ar")
    probes = cells_of(grid, "linear_probe")
    settings = RunSettings(results_root=tmp_path, data_root=None, tracking_uri=None, pack=3)
    packs = plan_packs([*ar, *probes, grid["pretrain"]], settings)
    assert sorted(len(p) for p in packs) == [1, 2, 2, 3, 3]
    assert all(len({pack_key(c) for c in p}) == 1 for p in packs)
    assert sorted(c.cell_id for p in packs for c in p) == sorted(c.cell_id for c in [*ar, *probes, grid["pretrain"]])
    assert all(len(p) == 1 for p in plan_packs(ar, dataclasses.replace(settings, pack=1)))
    # a cell whose checkpoint reached another epoch cannot share the others' passes
    directory = cell_dir(tmp_path, "fast", ar[0].cell_id)
    directory.mkdir(parents=True)
    torch.save({"epoch": 2}, directory / CHECKPOINT)
    packs = plan_packs(ar, dataclasses.replace(settings, pack=8))
    assert sorted(len(p) for p in packs) == [1, 7]


def test_cells_with_different_batch_sizes_or_whole_networks_do_not_pack(grid):
    ar = cells_of(grid, "ar")[0]
    other = dataclasses.replace(ar, spec={**ar.spec, "hparams": {**ar.spec["hparams"], "batch_size": 32}})
    assert pack_key(other) != pack_key(ar)
    assert pack_key(grid["pretrain"]) is None
    with pytest.raises(ValueError, match="pack key"):
        run_pack([ar, other], ["a", "b"])


def test_pack_rejects_models_that_do_not_share_a_backbone(grid):
    cells = cells_of(grid, "ar")[:2]
    a = build_models(cells[:1], dataset_info(cells[0].task), grid["deps"])[0]
    b = build_models(cells[1:], dataset_info(cells[1].task), grid["deps"])[0]
    with pytest.raises(ValueError, match="share one backbone"):
        Pack([a, b])


@pytest.mark.slow
def test_compile_is_timed_apart_and_trains_the_same_program(grid, tmp_path):
    cell = cells_of(grid, "ar")[0]
    compiled = run_cell(cell, tmp_path / "compiled",
                        TrainContext(dependency_dirs=grid["deps"], options=TrainOptions(compile=True)))
    eager = run_cell(cell, tmp_path / "eager", TrainContext(dependency_dirs=grid["deps"]))
    assert compiled.timing.compile_s > 0 and eager.timing.compile_s == 0
    torch.testing.assert_close(learned_state(tmp_path / "compiled")["W"], learned_state(tmp_path / "eager")["W"],
                               atol=1e-4, rtol=1e-3)
