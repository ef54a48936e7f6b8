"""Comparisons between methods that differ in one choice, for any grid that holds both sides: each label mapping
against `first_k` with everything else equal, and one program shared by several tasks (a joint task, `a+b`)
against one program per task. Differences are in points of test accuracy: of the means over the finished seeds, and
paired by seed with a 95% interval where both sides ran the same seeds."""
from __future__ import annotations

from typing import Optional

from analysis.render import Column, Table
from analysis.results import Setup
from analysis.stats import difference, mean, paired_difference, summarize
from analysis.table import original_of
from bench.data import dataset_info
from bench.grid import canonical_json
from bench.record import CellRecord

BASE_MAP = "first_k"
MAP_KEYS = ("label_map", "labels_per_class")


def _test_acc(setup: Setup):
    return summarize(r.record.metrics.test_acc for r in setup.done)


def _val_acc(setup: Setup):
    return summarize(r.record.metrics.val_acc for r in setup.done)


def _part_test_acc(record: CellRecord, part: str) -> Optional[float]:
    figures = record.metrics.per_task.get(part)
    return figures.test_acc if figures else None


def _without(setup: Setup, method_keys: tuple[str, ...] = (), task: Optional[str] = None) -> str:
    spec = {k: v for k, v in setup.cell.spec.items() if k != "seed"}
    spec["method"] = {k: v for k, v in spec["method"].items() if k not in method_keys}
    if task is not None:
        spec["task"] = task
    return canonical_json(spec)


LABEL_MAP_COLUMNS = [
    Column("new task"), Column("method"), Column("original"), Column("label map"), Column("seeds"),
    Column("test acc %", ".2f", True), Column("first_k test acc %", ".2f", True),
    Column("Δ vs first_k (points)", "+.2f"), Column("paired Δ [95% CI]", "+.2f", paired=True),
    Column("Δ val acc vs first_k", "+.2f"),
]


def label_map_table(setups: list[Setup]) -> Optional[Table]:
    """Every setup with a label mapping other than first_k beside the same setup with first_k."""
    mapped = [s for s in setups if "label_map" in s.cell.spec["method"]]
    bases = {_without(s, MAP_KEYS): s for s in mapped if s.cell.spec["method"]["label_map"] == BASE_MAP}
    rows, best = [], {}
    for s in mapped:
        label_map = s.cell.spec["method"]["label_map"]
        base = bases.get(_without(s, MAP_KEYS))
        if label_map == BASE_MAP or base is None:
            continue
        acc, base_acc = _test_acc(s), _test_acc(base)
        gain = difference(mean(acc), mean(base_acc))
        val_gain = difference(mean(_val_acc(s)), mean(_val_acc(base)))
        rows.append([s.cell.task, s.cell.method_label, original_of(s.cell), label_map, s.status, acc, base_acc, gain,
                     paired_difference(s.test_acc_by_seed(), base.test_acc_by_seed()), val_gain])
        group = (s.cell.method, s.cell.task)
        # the best mapping is the one validation picks: choosing it by test accuracy would report the maximum of
        # several noisy test figures as the gain
        if gain is not None and val_gain is not None and (group not in best or val_gain > best[group][0]):
            best[group] = (val_gain, gain, s.cell.method_label)
    if not rows:
        return None
    notes = []
    for (method, task), (_, gain, label) in sorted(best.items()):
        notes.append(f"{method} on {task}: the mapping with the best validation accuracy ({label}) "
                     + (f"beat first_k by {gain:.2f} test points" if gain > 0 else
                        f"did not beat first_k: {-gain:.2f} test points below"))
    notes.append("each row: the same cell as its first_k twin (method, program, input size, original, recipe, "
                 "seeds) but for the label mapping; Δ = its mean test accuracy − the twin's; paired Δ: the mean of "
                 "the per-seed differences (a seed is the same split and batches for both) with its 95% Student-t "
                 "interval")
    return Table("Label mappings against first_k", "label_maps_vs_first_k", LABEL_MAP_COLUMNS, rows, notes)


JOINT_COLUMNS = [
    Column("joint task"), Column("method"), Column("original"), Column("task"), Column("seeds"),
    Column("one program for all: test acc %", ".2f", True), Column("one program per task: test acc %", ".2f", True),
    Column("Δ shared − own (points)", "+.2f"), Column("paired Δ [95% CI]", "+.2f", paired=True),
    Column("per-task cells"),
]


def joint_table(setups: list[Setup]) -> Optional[Table]:
    """Per part of each joint task: the shared program's accuracy on it beside the part's own program's."""
    by_spec = {_without(s): s for s in setups}
    rows = []
    for s in setups:
        parts = dataset_info(s.cell.task).parts if not s.method.makes_original else ()
        for part in parts:
            shared = summarize(_part_test_acc(r.record, part) for r in s.done)
            own = by_spec.get(_without(s, task=part))
            own_acc = _test_acc(own) if own else None
            paired = paired_difference({r.cell.seed: _part_test_acc(r.record, part) for r in s.done},
                                       own.test_acc_by_seed()) if own else None
            rows.append([s.cell.task, s.cell.method_label, original_of(s.cell), part, s.status, shared, own_acc,
                         difference(mean(shared), mean(own_acc)), paired,
                         own.status if own else "no such cell in the grid"])
    if not rows:
        return None
    return Table("One program, several tasks", "one_program_several_tasks", JOINT_COLUMNS, rows, notes=[
        "one program (W) trained on the mixture of the tasks, each task reading source classes of its own; an "
        "image's logits compete only within its own task's classes (the host knows which task it serves)",
        "per task: its test images are exactly those of the task's own cell (each part is split as it is alone)"])
