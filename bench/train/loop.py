"""The trainer's loop, read top to bottom: set up, train epoch by epoch (each member checkpointed after each),
select each member's best epoch on validation, read the test split once with those weights, write the records.

Whoever watches (MLflow, the console, a sweep's reporter) is an observer of the events (`bench.train.events`).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench import checkpoint, stop
from bench.cpu_usage import CpuUsage
from bench.files import MODEL
from bench.grid import Cell
from bench.methods import METHODS
from bench.record import CellRecord, write_record
from bench.train.epoch import train_epoch
from bench.train.evaluation import Evaluated, evaluate, source_counts
from bench.train.events import Ended, EpochEnded, Failed, Observer, Observers
from bench.train.members import Member
from bench.train.options import TrainContext, TrainOptions
from bench.train.results import done_record, now
from bench.train.resume import save_epoch
from bench.train.schedule import set_epoch_lr
from bench.train.setup import PackRun, announce, check_packable, load_splits, set_up


def run_cell(cell: Cell, directory: Path, context: TrainContext = TrainContext(),
             observers: Sequence[Observer] = ()) -> CellRecord:
    """Train one cell in `directory`, resuming from its checkpoint if one exists; -> its result record."""
    return run_pack([cell], [directory], context, observers)[0]


def run_pack(cells: list[Cell], directories: list[Path], context: TrainContext = TrainContext(),
             observers: Sequence[Observer] = ()) -> list[CellRecord]:
    """Train cells that share a backbone pass (`bench.pack.pack_key`), each resuming from its checkpoint."""
    check_packable(cells)
    started_at, usage = now(), CpuUsage.start()
    run = set_up(cells, directories, context)
    events = Observers(observers, run.dist.main)
    announce(run, events)
    try:
        load_splits(run, context.options.compile, events, context.options.data_path)
        for epoch in range(run.start_epoch, run.epochs):
            signum = run.dist.stop_agreed()  # every member's checkpoint of the last epoch is on disk
            if signum:
                raise stop.Interrupted(signum, epoch)
            run_epoch(run, epoch, events)
        evaluated = select_and_test(run, context.options)
    except BaseException as exc:
        # SystemExit: stopped on purpose (Ray Tune's scheduler ends a weak trial this way); who stopped it closes
        # the run. KeyboardInterrupt: asked twice.
        if not isinstance(exc, SystemExit):
            for m in run.members:
                events.on_failure(Failed(m.cell, exc, isinstance(exc, (stop.Interrupted, KeyboardInterrupt))))
        raise
    finally:
        run.meter.close()
    compute = usage.finish(run.dist.summed_over_ranks(), share=len(run.members))
    records = [write_done(run, m, test, train, started_at, compute, events)
               for m, (test, train) in zip(run.members, evaluated, strict=True)]
    run.dist.wait()
    return records


def run_epoch(run: PackRun, epoch: int, events: Observers) -> None:
    dist, train, members = run.dist, run.splits["train"], run.members
    run.timer.skip()
    set_epoch_lr(members, epoch)
    for m in members:  # e.g. FLM / ILM fit their label mapping here (charged to training)
        m.model.start_epoch(epoch, lambda m=m: source_counts(
            m.model, train, m.model.network().num_classes, run.task.info.num_classes, dist))
    trained = train_epoch(run.pack, members, train, epoch, dist)
    run.timer.charge("train_s")
    validated = evaluate(run.pack, run.models, run.splits["val"], dist)
    run.timer.charge("eval_s")
    for m, (train_loss, train_acc, seen), val in zip(members, trained, validated, strict=True):
        m.add_queries()
        m.clock.train_images += seen
        row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
               "val_loss": val.loss, "val_acc": val.acc, "elapsed_s": m.clock.total_s, "energy_j": m.clock.energy_j,
               **{f"val_acc.{part}": acc for part, acc in zip(run.task.info.parts, val.part_acc, strict=False)}}
        m.history.append(row)
        if val.acc > m.best["val_acc"]:  # selection on validation only
            m.best = {"epoch": epoch + 1, "val_acc": val.acc,
                      "learned": {k: v.detach().clone() for k, v in m.learned.state_dict().items()}}
        if dist.main:
            save_epoch(m, epoch)
        events.on_epoch(EpochEnded(m.cell, epoch + 1, m.hp["epochs"], row, m.best["val_acc"]))
    dist.wait()
    run.timer.skip()


def select_and_test(run: PackRun, options: TrainOptions) -> list[tuple[Evaluated, Evaluated]]:
    """Each member's best weights (on validation) back in place, evaluated once on the train split (the train
    accuracy the thesis reports: the selected weights, not the running mean while they moved); then the one and
    only read of the test split. -> (test, train) per member."""
    for m in run.members:
        m.learned.load_state_dict(m.best["learned"])
    run.timer.skip()
    trained = evaluate(run.pack, run.models, run.splits["train"], run.dist)
    run.timer.charge("eval_s")
    if options.evaluate_test:
        tested = evaluate(run.pack, run.models, run.splits["test"], run.dist)
        run.timer.charge("eval_s")
    else:
        tested = [Evaluated(None, None, [None] * len(run.task.info.parts))] * len(run.members)
    for m in run.members:
        m.add_queries()
    return list(zip(tested, trained, strict=True))


def write_done(run: PackRun, m: Member, test: Evaluated, train: Evaluated, started_at: str, compute: dict,
               events: Observers) -> CellRecord:
    """The member's done record; on the main process written (after the observers annotated it), and a pretrain
    cell's weights saved as the original model other cells load."""
    record = done_record(run, m, test, train, started_at, compute)
    if not run.dist.main:
        return record
    if METHODS.get(m.cell.method).makes_original:
        checkpoint.save_file(m.directory / MODEL, m.learned.state_dict())
    events.annotate(record)
    write_record(m.directory, record)
    events.on_end(Ended(m.cell, m.directory, record))
    return record
