"""The reference tables, one registered entry each: the thesis's Table 3.1, Experiment 2 and Table 5.1, and later
work's figures. Each says its file and how a cell finds its row; the CSV's `method` column says which method's
cells reproduce a row."""
from __future__ import annotations

from typing import Optional

from bench.reference import (
    ReferenceRow,
    ReferenceTable,
    method_of,
    method_value,
    read_table,
    register_reference_table,
    thesis_name,
)


@register_reference_table
class ThesisTable31(ReferenceTable):
    """Elsayed et al.'s reprogramming of each original model to each new task."""

    name = "thesis_table_3_1"
    file = "thesis_table_3_1.csv"
    thesis = True

    def rows(self) -> list[ReferenceRow]:
        return [ReferenceRow("thesis Table 3.1", (self.name, r["method"], r["original_task"], r["new_task"]),
                             f"{r['original_task']} -> {r['new_task']}", "Table 3.1", float(r["train_acc"]),
                             float(r["test_acc"]), (("original", r["original_task"]), ("new task", r["new_task"])))
                for r in read_table(self.name)]

    def cell_key(self, cell) -> Optional[tuple]:
        return (self.name, cell.method, cell.trained_on, cell.task)


@register_reference_table
class ThesisExperiment2(ReferenceTable):
    """The thesis reports no numbers for its Experiment 2, only that no tweak beat Table 3.1
    (thesis_experiment_2.md); its grids' original models are still compared with footnotes 3-6."""

    name = "thesis_experiment_2"
    thesis = True


@register_reference_table
class ThesisTable51(ReferenceTable):
    """A linear probe on each frozen Keras ImageNet model (the row names it), and a CNN trained from scratch."""

    name = "thesis_table_5_1"
    file = "thesis_table_5_1.csv"
    thesis = True
    # our dataset names -> the column prefixes of Table 5.1. Its Caltech-101 column is 97 classes (the thesis
    # dropped the five largest folders: caltech101_thesis); our full 101-class caltech101 (the corrected grid's
    # choice) is compared with the same published figure, and the report says that the two differ.
    tasks = {"caltech101_thesis": "caltech101", "caltech101": "caltech101", "caltech256_reduced": "caltech256r"}
    # column prefix -> our dataset that is the thesis's own (named in the table's "new task" column)
    columns = {"caltech101": "caltech101_thesis", "caltech256r": "caltech256_reduced"}

    @staticmethod
    def model(method_uses_original: bool, name: Optional[str]) -> Optional[str]:
        """The Keras model a row compares; a method that trains its own network compares none."""
        return name if method_uses_original else None

    def rows(self) -> list[ReferenceRow]:
        from bench.methods import METHODS

        return [ReferenceRow(f"thesis Table 5.1 ({r['backbone']})",
                             (self.name, r["method"], self.model(METHODS.get(r["method"]).uses_original,
                                                                 r["backbone"]), prefix),
                             r["backbone"], task, float(r[f"{prefix}_train"]), float(r[f"{prefix}_test"]),
                             (("backbone", r["backbone"]), ("new task", task)))
                for prefix, task in self.columns.items() for r in read_table(self.name)]

    def cell_key(self, cell) -> Optional[tuple]:
        uses_original = method_of(cell).uses_original
        keras = self.model(uses_original, thesis_name(cell.backbone))
        if cell.task not in self.tasks or (uses_original and keras is None):
            return None
        return (self.name, cell.method, keras, self.tasks[cell.task])


@register_reference_table
class LaterWork(ReferenceTable):
    """Later work's figures (ILM-VP, AutoVP), matched by our cells of the same method, input layout (program,
    input size, pad width) and label mapping on the same original model and task; each row carries the paper's
    recipe (epochs, optimiser, lr, schedule, weight decay, λ) so that the report can say where ours differs."""

    name = "later_work"
    file = "later_work.csv"
    # columns a cell must match; input_size / pad_width empty: the method's default (canvas: the native size)
    compared = ("method", "weights", "backbone", "task", "program", "input_size", "pad_width", "label_map")
    recipe = ("epochs", "optimizer", "lr", "schedule", "weight_decay", "lam")  # read where the CSV has them

    def rows(self) -> list[ReferenceRow]:
        return [ReferenceRow(f"{r['work']}", (self.name, *(r[c] for c in self.compared)),
                             f"{r['work']} {r['backbone']} -> {r['task']}", r["task"], None, float(r["test_acc"]),
                             (("work", r["work"]), ("backbone", r["backbone"]), ("new task", r["task"]),
                              ("program", r["program"]), ("label map", r["label_map"])),
                             tuple((c, r[c]) for c in self.recipe if r.get(c)))
                for r in read_table(self.name)]

    def cell_key(self, cell) -> Optional[tuple]:
        weights = (cell.spec["original"] or {}).get("weights")
        if weights is None:  # later work reprograms published weights only
            return None
        values = {"method": cell.method, "weights": weights, "backbone": cell.backbone, "task": cell.task,
                  "program": method_value(cell, "program"), "label_map": method_value(cell, "label_map"),
                  "input_size": method_value(cell, "input_size"), "pad_width": method_value(cell, "pad_width")}
        # a method without a program or a mapping (linear_probe, finetune) matches the CSV's empty column
        return (self.name, *("" if values[c] is None else str(values[c]) for c in self.compared))


@register_reference_table
class VisualPrompting(LaterWork):
    """The visual-prompting benchmark of ILM-VP and AutoVP: ResNet-18 and CLIP on twelve datasets, and the
    baselines they report, matched as later work's rows are (grids vp_resnet18, vp_clip)."""

    name = "visual_prompting"
    file = "visual_prompting.csv"
    compared = ("method", "weights", "backbone", "task", "program", "label_map")  # its CSV gives no sizes
