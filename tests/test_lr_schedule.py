"""MultiStepLR as a grid's hparams (`lr_milestones`, `lr_gamma`): the trainer's lr of every epoch is torch's
MultiStepLR's, worked out from the epoch alone (so a resumed cell gets it too), and a cell that sets none keeps the
spec, and so the cell_id, it had before the option existed."""
from __future__ import annotations

import pytest
import torch

from bench.grid.schema import HParams
from bench.train.schedule import lr_at, set_epoch_lr


class _Member:  # what set_epoch_lr reads of a trainer's member: its hparams and its optimizer
    def __init__(self, hp: dict, optimizer: torch.optim.Optimizer):
        self.hp, self.optimizer = hp, optimizer


def test_every_epochs_lr_is_torchs_multisteplr_as_ilm_vp_steps_it():
    hp = HParams(lr=0.01, epochs=200, lr_milestones="100/144", lr_gamma=0.1).model_dump()
    ours = _Member(hp, torch.optim.Adam([torch.nn.Parameter(torch.zeros(3))], lr=hp["lr"]))
    theirs = torch.optim.Adam([torch.nn.Parameter(torch.zeros(3))], lr=hp["lr"])
    scheduler = torch.optim.lr_scheduler.MultiStepLR(theirs, milestones=[100, 144], gamma=0.1)
    seen = []
    for epoch in range(200):
        set_epoch_lr([ours], epoch)
        assert abs(ours.optimizer.param_groups[0]["lr"] - theirs.param_groups[0]["lr"]) < 1e-15, epoch
        seen.append(ours.optimizer.param_groups[0]["lr"])
        theirs.step()
        scheduler.step()
    assert seen[99] == 0.01 and abs(seen[100] - 1e-3) < 1e-15 and abs(seen[144] - 1e-4) < 1e-15


def test_a_resumed_epoch_gets_the_lr_it_would_have_had():
    hp = HParams(lr=0.5, epochs=10, lr_milestones="3/6", lr_gamma=0.5).model_dump()
    assert [lr_at(hp, e) for e in range(10)] == [0.5] * 3 + [0.25] * 3 + [0.125] * 4


def test_no_milestones_is_a_constant_lr_and_leaves_the_spec_as_it_was():
    hp = HParams(lr=0.05, epochs=10).model_dump()
    assert "lr_milestones" not in hp and "lr_gamma" not in hp  # the cell_ids of every existing cell stand
    assert {lr_at(hp, e) for e in range(10)} == {0.05}
    assert HParams(lr_milestones="5", lr_gamma=0.1).model_dump()["lr_milestones"] == "5"


def test_the_trainer_trains_each_epoch_at_the_scheduled_lr(tmp_path):
    from fixtures_stream import register, write_image_folder

    from bench.grid import load_grid
    from bench.train import TrainContext, run_cell
    from bench.train.setup import set_up

    register()
    write_image_folder(tmp_path / "data", per_class=8)
    (tmp_path / "g.yaml").write_text(
        "name: lrsched\noriginals: [{backbone: test_tinycnn, methods: [scratch]}]\ntasks: [test_image_folder]\n"
        "methods: [{name: scratch}]\nhparams: {epochs: 3, batch_size: 8, lr: 0.01, lr_milestones: '1/2', "
        "lr_gamma: 0.5}\nseeds: [0]\n")
    [cell] = load_grid(tmp_path / "g.yaml").cells
    context = TrainContext(data_root=tmp_path / "data")
    record = run_cell(cell, tmp_path / "cell", context)
    assert record.done and len(record.history) == 3
    # the last epoch's checkpoint holds the optimizer as it trained epoch 3: lr x0.5 twice
    run = set_up([cell], [tmp_path / "cell"], context)
    try:
        [member] = run.members
        assert member.optimizer.param_groups[0]["lr"] == pytest.approx(0.0025)
    finally:
        run.meter.close()
