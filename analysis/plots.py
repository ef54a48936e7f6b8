"""The report's pictures (PNG, matplotlib's Agg canvas; no display, no pyplot state): accuracy against compute
per task with its Pareto front, learning curves per cell, and a published table's bars beside ours."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from analysis.efficiency import SetupFigures, method_name
from analysis.results import Setup
from analysis.table import original_of
from analysis.thesis import Compared

DPI = 100


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both counts (less compute and higher accuracy), cheapest first."""
    front, best = [], -math.inf
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def accuracy_vs_compute(task: str, figs: list[SetupFigures], path: Path) -> Optional[Path]:
    """Test accuracy against device-hours, one marker per method and original/backbone (mean ± sd)."""
    shown = [f for f in figs if f.test_acc is not None and f.compute_h is not None and f.compute_h.mean > 0]
    if not shown:
        return None
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    colours = {}
    for f in shown:
        key = original_of(f.setup.cell)
        colour = colours.setdefault(key, f"C{len(colours) % 10}")
        ax.errorbar(f.compute_h.mean, f.test_acc.mean, xerr=f.compute_h.sd or 0, yerr=f.test_acc.sd or 0,
                    marker=f.setup.method.marker, markersize=9, color=colour, linestyle="none",
                    capsize=3, label=f"{method_name(f.setup)} · {key} (n={f.test_acc.n})")
    front = pareto_front([(f.compute_h.mean, f.test_acc.mean) for f in shown])
    if len(front) > 1:
        xs, ys = zip(*front, strict=True)
        ax.plot(xs, ys, drawstyle="steps-post", color="0.4", linestyle="--", linewidth=1, label="Pareto front")
    ax.set_xscale("log")
    # 1-2-5 ticks labelled plainly: a grid's points often sit within one decade, where powers of ten say little
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.2g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    units = sorted({f.unit for f in shown})
    ax.set_xlabel(f"compute ({' / '.join(units)}, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{task}: accuracy against compute")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return _save(fig, path)


def learning_curves(task: str, setups: list[Setup], threshold: Optional[float], path: Path) -> Optional[Path]:
    """Train and val accuracy per epoch, one panel per finished cell; the scratch accuracy to reach dotted."""
    cells = [r for s in setups for r in s.done if r.record.history]
    if not cells:
        return None
    cols = min(4, len(cells))
    rows = math.ceil(len(cells) / cols)
    fig = Figure(figsize=(3.2 * cols, 2.5 * rows))
    for i, result in enumerate(cells):
        ax = fig.add_subplot(rows, cols, i + 1)
        history = result.record.history
        epochs = [h.epoch for h in history]
        ax.plot(epochs, [h.train_acc for h in history], linestyle="--", marker=".", label="train")
        ax.plot(epochs, [h.val_acc for h in history], marker=".", label="val")
        if threshold is not None:
            ax.axhline(threshold, color="0.5", linestyle=":", linewidth=1, label="scratch val")
        cell = result.cell
        ax.set_title(f"{cell.method_label} · {original_of(cell)}\nseed {cell.seed} ({cell.cell_id})", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch", fontsize=7)
        ax.set_ylabel("accuracy (%)", fontsize=7)
        ax.grid(True, alpha=0.3)
        if i == 0:
            ax.legend(fontsize=6)
    fig.suptitle(f"{task}: learning curves", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def reference_bars(title: str, compared: list[Compared], path: Path) -> Optional[Path]:
    """The published test accuracies as bars with ours beside them; a row we lack is marked missing."""
    if not compared:
        return None
    panels: dict[str, list[Compared]] = {}
    for c in compared:
        panels.setdefault(c.row.panel, []).append(c)
    widest = max(len(v) for v in panels.values())
    fig = Figure(figsize=(max(6.0, 0.75 * widest + 2), 3.4 * len(panels)))
    width = 0.38
    for i, (panel, rows) in enumerate(panels.items()):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        xs = range(len(rows))
        ax.bar([x - width / 2 for x in xs], [c.row.test_acc for c in rows], width, color="0.65", label="thesis")
        ours = [c.test_acc.mean if c.test_acc else 0.0 for c in rows]
        errs = [c.test_acc.sd or 0.0 if c.test_acc else 0.0 for c in rows]
        ax.bar([x + width / 2 for x in xs], ours, width, yerr=errs, capsize=2, color="C0", label="ours")
        for x, c in zip(xs, rows, strict=True):
            if c.test_acc is None:
                ax.text(x + width / 2, 1, "missing" if c.status.startswith("missing") else "not run", rotation=90,
                        ha="center", va="bottom", fontsize=7, color="C3")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([c.row.name + (f"\n{c.ours}" if c.ours else "") for c in rows], rotation=30,
                           ha="right", fontsize=7)
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{title}: {panel}" if panel not in title else title, fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
