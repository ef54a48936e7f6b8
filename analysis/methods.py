"""Comparisons between methods that differ in one choice, for any grid that holds both sides: each label mapping
against `first_k` with everything else equal, and one program shared by several tasks (a joint task, `a+b`)
against one program per task. Differences are in points of test accuracy (means over the finished seeds)."""
from __future__ import annotations

from typing import Optional

from analysis.render import Column, Table
from analysis.results import Setup
from analysis.stats import difference, mean, summarize
from analysis.table import original_of
from bench.data import dataset_info
from bench.grid import canonical_json

BASE_MAP = "first_k"
MAP_KEYS = ("label_map", "labels_per_class")


def _test_acc(setup: Setup):
    return summarize(r.record["metrics"]["test_acc"] for r in setup.done)


def _without(setup: Setup, method_keys: tuple[str, ...] = (), task: Optional[str] = None) -> str:
    spec = {k: v for k, v in setup.cell.spec.items() if k != "seed"}
    spec["method"] = {k: v for k, v in spec["method"].items() if k not in method_keys}
    if task is not None:
        spec["task"] = task
    return canonical_json(spec)


LABEL_MAP_COLUMNS = [
    Column("new task"), Column("method"), Column("original"), Column("label map"), Column("seeds"),
    Column("test acc %", ".2f", True), Column("first_k test acc %", ".2f", True),
    Column("Δ vs first_k (points)", "+.2f"),
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
        rows.append([s.cell.task, s.cell.method_label, original_of(s.cell), label_map, s.status, acc, base_acc, gain])
        group = (s.cell.method, s.cell.task)
        if gain is not None and (group not in best or gain > best[group][0]):
            best[group] = (gain, s.cell.method_label)
    if not rows:
        return None
    notes = []
    for (method, task), (gain, label) in sorted(best.items()):
        if gain > 0:
            notes.append(f"{method} on {task}: the best mapping beat first_k by {gain:.2f} points ({label})")
        else:
            notes.append(f"{method} on {task}: no mapping beat first_k; the best was {-gain:.2f} points below "
                         f"({label})")
    notes.append("each row: the same cell as its first_k twin (method, program, input size, original, recipe, "
                 "seeds) but for the label mapping; Δ = its mean test accuracy − the twin's")
    return Table("Label mappings against first_k", "label_maps_vs_first_k", LABEL_MAP_COLUMNS, rows, notes)


JOINT_COLUMNS = [
    Column("joint task"), Column("method"), Column("original"), Column("task"), Column("seeds"),
    Column("one program for all: test acc %", ".2f", True), Column("one program per task: test acc %", ".2f", True),
    Column("Δ shared − own (points)", "+.2f"), Column("per-task cells"),
]


def joint_table(setups: list[Setup]) -> Optional[Table]:
    """Per part of each joint task: the shared program's accuracy on it beside the part's own program's."""
    by_spec = {_without(s): s for s in setups}
    rows = []
    for s in setups:
        parts = dataset_info(s.cell.task).parts if s.cell.method != "pretrain" else ()
        for part in parts:
            shared = summarize(((r.record["metrics"].get("per_task") or {}).get(part) or {}).get("test_acc")
                               for r in s.done)
            own = by_spec.get(_without(s, task=part))
            own_acc = _test_acc(own) if own else None
            rows.append([s.cell.task, s.cell.method_label, original_of(s.cell), part, s.status, shared, own_acc,
                         difference(mean(shared), mean(own_acc)),
                         own.status if own else "no such cell in the grid"])
    if not rows:
        return None
    return Table("One program, several tasks", "one_program_several_tasks", JOINT_COLUMNS, rows, notes=[
        "one program (W) trained on the mixture of the tasks, each task reading source classes of its own; an "
        "image's logits compete only within its own task's classes (the host knows which task it serves)",
        "per task: its test images are exactly those of the task's own cell (each part is split as it is alone)"])
