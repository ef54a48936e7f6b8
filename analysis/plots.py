"""The report's figures (matplotlib's Agg canvas; no display, no pyplot state), drawn for a paper: accuracy
against compute per task with its Pareto front, learning curves per cell, and a published table's bars beside
ours. Each is written in every asked format (PNG at 300 dpi, PDF, SVG with its text kept as text, so a journal's
editor can change it), with fonts of 9 pt or more, the names of `analysis.labels` and a chance line.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from analysis.efficiency import SetupFigures
from analysis.labels import chance_accuracy, dataset_title, method_titles, original_title
from analysis.results import Setup
from analysis.thesis import Compared

DPI = 300
FIG_FORMATS = ("png", "pdf", "svg")
EMBEDDABLE = ("png", "svg")  # what an HTML <img> or a Markdown image shows; a PDF is linked instead
# 9 pt is the smallest size most journals accept in a figure
STYLE = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
         "legend.fontsize": 9, "figure.titlesize": 11, "svg.fonttype": "none", "pdf.fonttype": 42}
CHANCE_STYLE = {"color": "0.35", "linestyle": (0, (1, 2)), "linewidth": 1}


def _save(fig: Figure, path: Path, formats: Sequence[str]) -> list[Path]:
    """The figure in each format beside `path` (its suffix replaced); -> the files written, in `formats` order."""
    FigureCanvasAgg(fig)
    written = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        fig.savefig(target, dpi=DPI, bbox_inches="tight")
        written.append(target)
    return written


def paper_style(draw):
    """Draw (and save) under the paper style: rcParams are read as each artist is made, so all of it inside."""
    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        with rc_context(STYLE):
            return draw(*args, **kwargs)
    return drawn


def _chance_line(ax, task: str) -> None:
    chance = chance_accuracy(task)
    if chance is not None:
        ax.axhline(chance, **CHANCE_STYLE, label=f"chance ({chance:.3g}%)")


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both counts (less compute and higher accuracy), cheapest first."""
    front, best = [], -math.inf
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


@paper_style
def accuracy_vs_compute(task: str, figs: list[SetupFigures], path: Path, formats: Sequence[str] = ("png",)
                        ) -> list[Path]:
    """Test accuracy against device-hours, one marker per method and original/backbone (mean ± sd)."""
    shown = [f for f in figs if f.test_acc is not None and f.compute_h is not None and f.compute_h.mean > 0]
    if not shown:
        return []
    titles = method_titles(f.setup.cell for f in shown)
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    colours = {}
    for f in shown:
        cell = f.setup.cell
        key = original_title(cell)
        colour = colours.setdefault(key, f"C{len(colours) % 10}")
        ax.errorbar(f.compute_h.mean, f.test_acc.mean, xerr=f.compute_h.sd or 0, yerr=f.test_acc.sd or 0,
                    marker=f.setup.method.marker, markersize=9, color=colour, linestyle="none",
                    capsize=3, label=f"{titles[cell.cell_id]} · {key} (n={f.test_acc.n})")
    front = pareto_front([(f.compute_h.mean, f.test_acc.mean) for f in shown])
    if len(front) > 1:
        xs, ys = zip(*front, strict=True)
        ax.plot(xs, ys, drawstyle="steps-post", color="0.4", linestyle="--", linewidth=1, label="Pareto front")
    _chance_line(ax, task)
    ax.set_xscale("log")
    # 1-2-5 ticks labelled plainly: a grid's points often sit within one decade, where powers of ten say little
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.2g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    units = sorted({f.unit for f in shown})
    ax.set_xlabel(f"compute ({' / '.join(units)}, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{dataset_title(task)}: accuracy against compute")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return _save(fig, path, formats)


@paper_style
def learning_curves(task: str, setups: list[Setup], threshold: Optional[float], path: Path,
                    formats: Sequence[str] = ("png",)) -> list[Path]:
    """Train and val accuracy per epoch, one panel per finished cell on shared axes (so panels compare at a
    glance); the scratch accuracy to reach dashed, chance dotted."""
    cells = [r for s in setups for r in s.done if r.record.history]
    if not cells:
        return []
    titles = method_titles(r.cell for r in cells)
    cols = min(3, len(cells))
    rows = math.ceil(len(cells) / cols)
    fig = Figure(figsize=(3.6 * cols, 3.0 * rows))
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax in axes[len(cells):]:
        ax.set_visible(False)
    for i, (ax, result) in enumerate(zip(axes, cells, strict=False)):
        history = result.record.history
        epochs = [h.epoch for h in history]
        ax.plot(epochs, [h.train_acc for h in history], linestyle="--", marker=".", label="train")
        ax.plot(epochs, [h.val_acc for h in history], marker=".", label="validation")
        if threshold is not None:
            ax.axhline(threshold, color="C3", linestyle="-.", linewidth=1, label="from-scratch validation")
        _chance_line(ax, task)
        cell = result.cell
        ax.set_title(f"{titles[cell.cell_id]}\n{original_title(cell)}, seed {cell.seed}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if i % cols == 0:
            ax.set_ylabel("accuracy (%)")
        if i >= len(cells) - cols:
            ax.set_xlabel("epoch")
            ax.xaxis.set_tick_params(labelbottom=True)
        ax.grid(True, alpha=0.3)
    ax.set_ylim(0, 100)
    last = max(h.epoch for r in cells for h in r.record.history)
    ax.set_xlim(0.5, last + 0.5)  # whole epochs, even for a one-epoch cell
    handles, labels = axes[0].get_legend_handles_labels()
    fig.suptitle(f"{dataset_title(task)}: learning curves")
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), bbox_to_anchor=(0.5, 0.0))
    return _save(fig, path, formats)


@paper_style
def reference_bars(title: str, compared: list[Compared], path: Path, formats: Sequence[str] = ("png",)
                   ) -> list[Path]:
    """The published test accuracies as bars with ours beside them, panels on one accuracy scale; a row we lack
    is marked missing."""
    if not compared:
        return []
    panels: dict[str, list[Compared]] = {}
    for c in compared:
        panels.setdefault(c.row.panel, []).append(c)
    widest = max(len(v) for v in panels.values())
    fig = Figure(figsize=(max(6.4, 0.85 * widest + 2), 3.8 * len(panels)))
    width = 0.38
    for i, (panel, rows) in enumerate(panels.items()):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        xs = range(len(rows))
        ax.bar([x - width / 2 for x in xs], [c.row.test_acc for c in rows], width, color="0.65", label="published")
        ours = [c.test_acc.mean if c.test_acc else 0.0 for c in rows]
        errs = [c.test_acc.sd or 0.0 if c.test_acc else 0.0 for c in rows]
        ax.bar([x + width / 2 for x in xs], ours, width, yerr=errs, capsize=2, color="C0", label="ours")
        for x, c in zip(xs, rows, strict=True):
            if c.test_acc is None:
                ax.text(x + width / 2, 1, "missing" if c.status.startswith("missing") else "not run", rotation=90,
                        ha="center", va="bottom", fontsize=9, color="C3")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([_bar_label(c) for c in rows], rotation=30, ha="right")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{title}: {panel}" if panel not in title else title)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return _save(fig, path, formats)


def _bar_label(c: Compared) -> str:
    """The published row's name, and the method we ran for it spelled out."""
    if c.setup is None:
        return c.row.name
    cell = c.setup.cell
    preprocessing = cell.spec["backbone"].get("preprocessing")  # two rows may differ only by it
    return f"{c.row.name}\n{method_titles([cell])[cell.cell_id]}" + (
        f" ({preprocessing} preprocessing)" if preprocessing else "")
