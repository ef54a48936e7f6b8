"""Each method against training from scratch, per new task: accuracy, compute, energy, CO2 and their ratios,
and the time each took to reach the from-scratch accuracy.

The baseline of a task is its `scratch` setup (with the row's backbone where there are several). Figures are
means across seeds (± sample sd, n); ratios are ratios of those means.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from analysis.measures import Reached, cost_of, time_to_accuracy
from analysis.render import Column, Table
from analysis.results import Setup
from analysis.stats import Stat, difference, mean, paired_difference, ratio, summarize
from analysis.table import original_of
from bench.cpu_usage import OVERLOAD_PRESSURE


@dataclass
class SetupFigures:
    """A setup's figures across its finished seeds."""

    setup: Setup
    test_acc: Optional[Stat]
    val_acc: Optional[Stat]
    wall_s: Optional[Stat]
    compute_h: Optional[Stat]
    unit: str
    train_images: Optional[Stat]
    trainable: Optional[Stat]
    energy_j: Optional[Stat]
    co2_g: Optional[Stat]
    energy_sources: str
    basis: str = ""  # what compute was measured from: CPU time, device-held time, wall x cores
    overloaded: int = 0  # seeds measured on a machine with more runnable work than their CPUs


def figures(setup: Setup, intensity: float) -> SetupFigures:
    records = [r.record for r in setup.done]
    costs = [cost_of(r) for r in records]
    unit = "/".join(sorted({c.unit for c in costs}))  # two units: seeds ran on different devices
    return SetupFigures(
        setup, summarize(r.metrics.test_acc for r in records),
        summarize(r.metrics.val_acc for r in records),
        summarize(c.wall_s for c in costs), summarize(c.compute_h for c in costs), unit,
        summarize(c.train_images for c in costs), summarize(c.trainable for c in costs),
        summarize(c.energy_j for c in costs), summarize(c.co2_g(intensity) for c in costs),
        "+".join(sorted({c.energy_source or "not recorded" for c in costs})),
        " + ".join(sorted({c.basis for c in costs})), sum(c.overloaded for c in costs))


def by_task(setups: list[Setup]) -> dict[str, list[Setup]]:
    """New task -> its setups (pretrain cells left out: they make originals, not a task's models)."""
    tasks: dict[str, list[Setup]] = {}
    for s in setups:
        if not s.method.makes_original:
            tasks.setdefault(s.cell.task, []).append(s)
    return tasks


def baseline_of(setup: Setup, candidates: list[Setup]) -> Optional[Setup]:
    scratch = [s for s in candidates if s.method.is_baseline]
    same = [s for s in scratch if s.cell.backbone == setup.cell.backbone]
    return (same or scratch or [None])[0]


def finetune_of(setup: Setup, candidates: list[Setup]) -> Optional[Setup]:
    """The task's `finetune` setup (the upper baseline): of the same original where there are several."""
    tuned = [s for s in candidates if s.method.tunes_original]
    same = [s for s in tuned if s.cell.spec["original"] == setup.cell.spec["original"]
            and s.cell.backbone == setup.cell.backbone]
    return (same or tuned or [None])[0]


def method_name(setup: Setup) -> str:
    return setup.cell.method_label


def threshold_of(baseline: Optional[SetupFigures]) -> Optional[float]:
    """The from-scratch baseline's final accuracy: its selected val accuracy (what its test was read with)."""
    return mean(baseline.val_acc) if baseline else None


def reached(setup: Setup, threshold: Optional[float]) -> list[Optional[Reached]]:
    if threshold is None:
        return []
    return [time_to_accuracy(r.record, threshold) for r in setup.done]


def _reach_compute(setup: Setup, threshold: Optional[float]) -> Optional[float]:
    return mean(summarize(r.compute_h for r in reached(setup, threshold) if r is not None))


RATIOS = "ratios to from-scratch"
EFFICIENCY_COLUMNS = [
    Column("method", key=True), Column("original", key=True), Column("seeds", key=True),
    Column("test acc %", ".2f", True),
    Column("Δ vs scratch (points)", "+.2f"), Column("paired Δ vs scratch [95% CI]", "+.2f", paired=True),
    Column("Δ vs finetune (points)", "+.2f"),
    Column("wall-clock s", ".1f", True), Column("compute", ".3g", True),
    Column("unit"), Column("compute basis"), Column("overloaded seeds"),
    Column("train images", ",.0f", True), Column("trainable params", ",.0f", True),
    Column("energy J", ".4g", True), Column("energy source"), Column("CO2 g", ".3g", True),
    Column("compute ÷ scratch", ".3g", group=RATIOS), Column("energy ÷ scratch", ".3g", group=RATIOS),
    Column("points gained per device-h", ".3g", group=RATIOS),
    Column("g CO2 per point gained", ".3g", group=RATIOS),
    Column("compute to scratch acc ÷ scratch's", ".3g", group=RATIOS),
    Column("compute saved to scratch acc %", ".1f", group=RATIOS),
]

TIME_COLUMNS = [
    Column("method"), Column("original"), Column("reached"), Column("epoch", ".2g", True),
    Column("wall-clock s", ".1f", True), Column("compute", ".3g", True), Column("unit"),
    Column("energy J", ".4g", True), Column("compute ÷ scratch's", ".3g"),
]


def efficiency_table(task: str, setups: list[Setup], intensity: float) -> Table:
    figs = {id(s): figures(s, intensity) for s in setups}
    rows = []
    for s in setups:
        f = figs[id(s)]
        base_setup = baseline_of(s, setups)
        b = figs[id(base_setup)] if base_setup is not None else None
        threshold = threshold_of(b)
        base_acc, acc = mean(b.test_acc) if b else None, mean(f.test_acc)
        gain = difference(acc, base_acc)
        tuned = finetune_of(s, setups)
        vs_finetune = difference(acc, mean(figs[id(tuned)].test_acc)) if tuned is not None else None
        same_unit = b is not None and f.unit == b.unit  # GPU-hours and core-hours do not divide
        compute_ratio = ratio(mean(f.compute_h), mean(b.compute_h)) if same_unit else None
        per_h = ratio(gain, mean(f.compute_h))
        co2_per_point = ratio(mean(f.co2_g), gain) if gain is not None and gain > 0 else None
        reach_ratio = ratio(_reach_compute(s, threshold), _reach_compute(base_setup, threshold)) if same_unit else None
        saved = 100.0 * (1.0 - reach_ratio) if reach_ratio is not None else None
        paired = paired_difference(s.test_acc_by_seed(), base_setup.test_acc_by_seed()) \
            if base_setup is not None and base_setup is not s else None
        rows.append([method_name(s), original_of(s.cell), s.status, f.test_acc, gain, paired, vs_finetune, f.wall_s,
                     f.compute_h,
                     f.unit or None, f.basis or None, _overloaded_text(f), f.train_images, f.trainable, f.energy_j,
                     f.energy_sources if s.done else None, f.co2_g,
                     compute_ratio, ratio(mean(f.energy_j), mean(b.energy_j) if b else None), per_h, co2_per_point,
                     reach_ratio, saved])
    return Table(f"Efficiency against from-scratch: new task {task}", f"efficiency_{task}", EFFICIENCY_COLUMNS, rows,
                 notes=_baseline_notes(setups, figs) + _overload_notes(setups, figs))


def _overloaded_text(f: SetupFigures) -> Optional[str]:
    return f"⚠ {f.overloaded}/{f.test_acc.n}" if f.overloaded and f.test_acc else None


def _overload_notes(setups: list[Setup], figs: dict) -> list[str]:
    flagged = [s for s in setups if figs[id(s)].overloaded]
    if not flagged:
        return []
    names = ", ".join(f"{method_name(s)} {original_of(s.cell)}" for s in flagged)
    return [f"⚠ measured on an overloaded machine (more runnable work than the cell's CPUs at its start or end, or "
            f"a CPU pressure over {OVERLOAD_PRESSURE:g}): {names}. Their wall-clock and energy are inflated; "
            f"their compute is CPU time where the record has it (the compute basis column)"]


def _baseline_notes(setups: list[Setup], figs: dict) -> list[str]:
    scratch = [s for s in setups if s.method.is_baseline]
    if not scratch:
        return ["no from-scratch (`scratch`) cell for this task in the grid: no ratios"]
    notes = []
    for s in scratch:
        f = figs[id(s)]
        notes.append(f"baseline: {method_name(s)} {original_of(s.cell)}: " + (
            f"test {f.test_acc.mean:.2f}%, selected val {f.val_acc.mean:.2f}% (the accuracy to reach), "
            f"over {f.test_acc.n} seed(s)" if f.test_acc else "not run yet: ratios are missing"))
    return notes


def time_to_accuracy_table(task: str, setups: list[Setup]) -> Table:
    """Per method: when val accuracy first reached the scratch baseline's final accuracy, from the epochs."""
    rows, notes = [], []
    for s in setups:
        base_setup = baseline_of(s, setups)
        threshold = threshold_of(figures(base_setup, 0.0)) if base_setup is not None else None
        hits = reached(s, threshold)
        got = [h for h in hits if h is not None]
        unit = "/".join(sorted({cost_of(r.record).unit for r in s.done}))
        base_unit = "/".join(sorted({cost_of(r.record).unit for r in base_setup.done})) if base_setup else None
        reached_text = (f"{len(got)}/{len(s.done)} seed(s) ≥ {threshold:.2f}%" if threshold is not None and s.done
                        else ("no baseline accuracy" if s.done else s.status))
        rows.append([method_name(s), original_of(s.cell), reached_text, summarize(h.epoch for h in got),
                     summarize(h.wall_s for h in got), summarize(h.compute_h for h in got), unit or None,
                     summarize(h.energy_j for h in got),
                     ratio(_reach_compute(s, threshold), _reach_compute(base_setup, threshold))
                     if unit == base_unit else None])
    notes.append("the accuracy to reach: the scratch baseline's selected val accuracy (mean over its seeds); times "
                 "and compute are at the end of the first epoch that reached it, setup and evaluation included")
    return Table(f"Time to the from-scratch accuracy: new task {task}", f"time_to_accuracy_{task}", TIME_COLUMNS,
                 rows, notes)


ORIGINALS_COLUMNS = [
    Column("original model"), Column("pretrain cell"), Column("seeds"), Column("test acc %", ".2f", True),
    Column("wall-clock s", ".1f", True), Column("compute", ".3g", True), Column("unit"),
    Column("energy J", ".4g", True), Column("CO2 g", ".3g", True), Column("reused by (cells)"),
]


def originals_table(setups: list[Setup], all_cells: list, intensity: float) -> Optional[Table]:
    """What making the original models cost: not charged to the methods that re-use them."""
    pretrain = [s for s in setups if s.method.makes_original]
    if not pretrain:
        return None
    rows = []
    for s in pretrain:
        f = figures(s, intensity)
        users = sum(s.cell.cell_id in c.depends_on for c in all_cells)
        rows.append([f"{s.cell.original_label or s.cell.task}/{s.cell.backbone}", s.cell.cell_id, s.status,
                     f.test_acc, f.wall_s, f.compute_h, f.unit or None, f.energy_j, f.co2_g, users])
    return Table("Original models (pretrain cells)", "originals", ORIGINALS_COLUMNS, rows, notes=[
        "reprogramming and linear probes re-use a model that exists; its pretraining is listed here and not "
        "charged to the efficiency rows"])
