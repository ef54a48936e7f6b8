"""`reprogbench report GRID`: a grid's results as tables and pictures, in Markdown, HTML and CSV.

Sections: the thesis's tables rebuilt from our runs (for a grid with `reference:`), then per new task the
efficiency table against from-scratch, the time to the from-scratch accuracy, accuracy against compute and the
learning curves; then what the original models cost; then the definitions and what was estimated. Reads the
cells' records (and MLflow runs where a record is absent); never trains.
"""
from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Union

from analysis import plots
from analysis.cells_table import STEM as CELLS_STEM
from analysis.cells_table import write_cells
from analysis.efficiency import (
    baseline_of,
    by_task,
    efficiency_table,
    figures,
    originals_table,
    threshold_of,
    time_to_accuracy_table,
)
from analysis.errors import ReportError
from analysis.measures import CARBON_INTENSITY_ENV, DEFAULT_CARBON_INTENSITY
from analysis.methods import joint_table, label_map_table
from analysis.render import Table, to_csv, to_html, to_markdown
from analysis.results import CellResult, Store, group_setups, load_results
from analysis.thesis import TITLES, Compared, compare, side_by_side, thesis_tables
from bench.files import write_text
from bench.grid import Cell, Grid, load_grid
from bench.grid.load import read_grid_yaml
from bench.grid.shipped import GRIDS_DIR, shipped_names
from bench.reference import ORIGINAL_MODELS

FORMATS = ("md", "html", "csv", "parquet")  # csv: each table, and cells.csv; parquet: cells.parquet
REPORT_RUN_FILE = "mlflow_report_run_id"  # in results/<grid>/: reports rerun log into the same MLflow run


def default_formats() -> str:
    """All of them; parquet only where pandas can write it (pyarrow or fastparquet installed)."""
    from analysis.cells_table import parquet_available

    return ",".join(f for f in FORMATS if f != "parquet" or parquet_available())


def parse_fig_formats(text: str) -> list[str]:
    formats = [f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in plots.FIG_FORMATS]
    if unknown or not formats:
        problem = f"unknown figure format {unknown[0]!r}" if unknown else "no figure format given"
        raise ReportError(f"--fig-format {text!r}: {problem}; give a comma-separated list of "
                          f"{', '.join(plots.FIG_FORMATS)} (e.g. --fig-format png,pdf)")
    return list(dict.fromkeys(formats))


def parse_formats(text: Optional[str]) -> list[str]:
    text = default_formats() if text is None else text
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        problem = f"unknown format {unknown[0]!r}" if unknown else "no format given"
        raise ReportError(f"--format {text!r}: {problem}; give a comma-separated list of {', '.join(FORMATS)} "
                          "(e.g. --format md,html)")
    if "parquet" in formats:
        from analysis.cells_table import check_format

        check_format("parquet")  # its library is there
    return formats


def carbon_intensity(flag: Optional[float]) -> tuple[float, str]:
    """(g CO2e per kWh, where it came from): the flag, else $REPROGBENCH_CARBON_INTENSITY, else the default."""
    if flag is not None:
        value, origin = flag, "--carbon-intensity"
    elif os.environ.get(CARBON_INTENSITY_ENV):
        try:
            value, origin = float(os.environ[CARBON_INTENSITY_ENV]), f"${CARBON_INTENSITY_ENV}"
        except ValueError:
            raise ReportError(f"${CARBON_INTENSITY_ENV}={os.environ[CARBON_INTENSITY_ENV]!r} is not a number of g "
                              "CO2e per kWh") from None
    else:
        value, origin = DEFAULT_CARBON_INTENSITY, "default: world average, IEA 2019"
    if value < 0:
        raise ReportError(f"carbon intensity {value:g} g/kWh from {origin} is negative; give g CO2e per kWh, e.g. "
                          f"--carbon-intensity {DEFAULT_CARBON_INTENSITY:g}")
    return value, origin


@dataclass
class Picture:
    title: str
    files: list[Path]  # one per figure format, in the order asked

    @property
    def path(self) -> Path:
        """The file a page shows: the PNG or SVG (a PDF only where it is the one format asked)."""
        return next((p for p in self.files if p.suffix.lstrip(".") in plots.EMBEDDABLE), self.files[0])


@dataclass
class Section:
    title: str
    items: list[Union[Table, Picture]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    grid: Grid
    results: list[CellResult]
    intensity: float
    intensity_origin: str
    sections: list[Section] = field(default_factory=list)

    @property
    def tables(self) -> list[Table]:
        return [i for s in self.sections for i in s.items if isinstance(i, Table)]

    @property
    def pictures(self) -> list[Picture]:
        return [i for s in self.sections for i in s.items if isinstance(i, Picture)]

    def summary(self) -> str:
        counts = {s: sum(r.status == s for r in self.results) for s in ("done", "failed", "pending")}
        from_mlflow = sum(r.source == "mlflow" for r in self.results)
        return (f"{self.grid.name}: {len(self.results)} cells: {counts['done']} done"
                + (f" ({from_mlflow} read from MLflow)" if from_mlflow else "")
                + f", {counts['failed']} failed, {counts['pending']} pending (missing)")


def build(grid: Grid, cells: list[Cell], results_root: Path, store: Optional[Store], out: Path,
          intensity: float, intensity_origin: str, fig_formats: Sequence[str] = ("png",)) -> Report:
    """Read the results, build every table and draw every picture (written into `out`, in each figure format)."""
    out.mkdir(parents=True, exist_ok=True)
    results = load_results(grid, cells, results_root, store)
    setups = group_setups(results)
    report = Report(grid, results, intensity, intensity_origin)

    if grid.reference:
        compared = compare(grid, setups)
        title = "The thesis's tables" if grid.reference.startswith("thesis") else "Published figures"
        section = Section(f"{title} ({grid.reference})", list(thesis_tables(grid, compared)))
        main_rows = [c for c in compared if c.row.key[0] != ORIGINAL_MODELS]
        bars = plots.reference_bars(TITLES.get(grid.reference, grid.reference).split(":")[0], main_rows,
                                    out / f"{grid.reference}_bars.png", fig_formats)
        if bars:
            section.items.append(Picture("Published test accuracy (grey) and ours (blue)", bars))
        if not main_rows:
            section.notes.append(f"the thesis reports no figures for {grid.reference} beyond its original models "
                                 f"(bench/reference/{grid.reference}.md)")
        report.sections.append(section)
        pair = paired_grid(grid)
        if pair is not None:
            report.sections.append(side_by_side_section(grid, compared, pair, results_root, store))

    for task, task_setups in by_task(setups).items():
        section = Section(f"New task: {task}")
        section.items += [efficiency_table(task, task_setups, intensity), time_to_accuracy_table(task, task_setups)]
        task_figs = [figures(s, intensity) for s in task_setups]
        scatter = plots.accuracy_vs_compute(task, task_figs, out / f"accuracy_vs_compute_{task}.png", fig_formats)
        scratch = next((s for s in task_setups if s.method.is_baseline), None)
        base = baseline_of(scratch, task_setups) if scratch else None
        curves = plots.learning_curves(task, task_setups, threshold_of(figures(base, intensity)) if base else None,
                                       out / f"learning_curves_{task}.png", fig_formats)
        for title, path in (("Accuracy against compute (Pareto front dashed)", scatter),
                            ("Learning curves per cell", curves)):
            if path:
                section.items.append(Picture(f"{task}: {title}", path))
            else:
                section.notes.append(f"{title.split(' (')[0].lower()}: not drawn, no finished cell")
        report.sections.append(section)

    comparisons = [t for t in (label_map_table(setups), joint_table(setups)) if t is not None]
    if comparisons:
        report.sections.append(Section("Methods compared one choice at a time", comparisons))

    originals = originals_table(setups, grid.cells, intensity)
    if originals:
        report.sections.append(Section("Original models", [originals]))
    report.sections.append(Section("Definitions", notes=definitions(report)))
    return report


def paired_grid(grid: Grid) -> Optional[Grid]:
    """The grid shown beside this one: the one it names in `compare_with`, or a shipped grid naming this one."""
    if grid.compare_with is not None:
        return load_grid(grid.compare_with)
    for name in shipped_names():  # a few small YAML files: read, not expanded, until one names this grid
        raw = read_grid_yaml(GRIDS_DIR / f"{name}.yaml")
        if name != grid.name and isinstance(raw, dict) and raw.get("compare_with") == grid.name:
            return load_grid(name)
    return None


def side_by_side_section(grid: Grid, compared: list[Compared], pair: Grid, results_root: Path,
                         store: Optional[Store]) -> Section:
    """The as-ran grid and its variant beside the published figures (either may be the grid asked for)."""
    pair_compared = compare(pair, group_setups(load_results(pair, pair.cells, results_root, store)))
    as_ran, variant = ((pair, grid) if grid.compare_with else (grid, pair))
    rows, variant_rows = ((pair_compared, compared) if grid.compare_with else (compared, pair_compared))
    done = {g.name: sum(c.test_acc is not None for c in r) for g, r in ((as_ran, rows), (variant, variant_rows))}
    section = Section(f"{as_ran.name} beside {variant.name}", [side_by_side(as_ran.name, rows, variant, variant_rows)])
    section.notes.append("rows with a result: " + ", ".join(f"{n} {k}" for n, k in done.items())
                         + f" (results read from {results_root}/<grid>/)")
    return section


def definitions(report: Report) -> list[str]:
    notes = [
        f"CO2 = energy × {report.intensity:g} g CO2e/kWh ({report.intensity_origin}; set it with "
        f"--carbon-intensity G_PER_KWH or ${CARBON_INTENSITY_ENV})",
        "compute (its basis in the compute basis column): on CUDA, the cell's wall-clock (a packed cell: its 1/K "
        "share) × the GPUs it held (GPU-h, device-held time); on a CPU, the process's CPU time, user + system over "
        "all ranks and reaped workers (CPU core-h, CPU time), which a busy machine does not inflate; records "
        "older than that are charged wall-clock × torch threads × ranks (wall x cores). Time to an accuracy charges "
        "CPU time by the share of the cell's wall-clock elapsed by that epoch",
        "figures are means over the finished seeds, ± sample standard deviation where n > 1; ratios are ratios of "
        "the means; Δ vs scratch = test accuracy − the scratch baseline's, in points",
        "points gained per device-h = Δ vs scratch ÷ the method's compute; g CO2 per point gained = its CO2 ÷ Δ "
        "(only where Δ > 0); compute saved to scratch acc = 1 − its compute to reach the scratch baseline's "
        "selected val accuracy ÷ the baseline's own",
        "the original models' pretraining is not charged to the methods that re-use them (see Original models)",
    ]
    bases: dict[str, int] = {}
    for r in report.results:
        energy = r.record.energy if r.done and r.record else None
        if energy:
            basis = f"{energy.source}: {energy.basis if energy.basis is not None else 'not stated'}"
            if energy.estimate:
                basis = "ESTIMATE, " + basis
            bases[basis] = bases.get(basis, 0) + 1
        elif r.done:
            bases["not recorded (a record written before energy was metered)"] = \
                bases.get("not recorded (a record written before energy was metered)", 0) + 1
    notes += [f"energy of {n} cell(s): {basis}" for basis, n in bases.items()]
    return notes


# --------------------------------------------------------------------------- writing


def write(report: Report, out: Path, formats: list[str]) -> list[Path]:
    """The report's files in `out` (the figures are already there); -> every file written, figures included."""
    written = [f for p in report.pictures for f in p.files]
    if "md" in formats:
        written.append(_write(out / "report.md", markdown(report)))
    if "html" in formats:
        written.append(_write(out / "report.html", page(report)))
    if "csv" in formats:
        written += [_write(out / f"{t.slug}.csv", to_csv(t)) for t in report.tables]
    written += [write_cells(report.results, out / f"{CELLS_STEM}.{f}", f) for f in ("csv", "parquet") if f in formats]
    return written


def _write(path: Path, text: str) -> Path:
    write_text(path, text)
    return path


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def markdown(report: Report) -> str:
    parts = [f"# Report: {report.grid.name}\n\n{report.summary()}. Written {_stamp()} by `reprogbench report`.\n"]
    for s in report.sections:
        parts.append(f"## {s.title}\n")
        for item in s.items:
            parts.append(to_markdown(item) if isinstance(item, Table) else _markdown_picture(item))
        parts += [f"- {n}" for n in s.notes]
        if s.notes:
            parts.append("")
    return "\n".join(parts) + "\n"


def _markdown_picture(picture: Picture) -> str:
    shown = picture.path
    image = (f"![{picture.title}]({shown.name})" if shown.suffix.lstrip(".") in plots.EMBEDDABLE
             else f"[{picture.title}]({shown.name})")
    others = [f"[{p.suffix.lstrip('.').upper()}]({p.name})" for p in picture.files if p != shown]
    return image + (f" ({', '.join(others)})" if others else "") + "\n"


def _html_picture(picture: Picture) -> str:
    shown, title = picture.path, html.escape(picture.title)
    links = "".join(f' · <a href="{html.escape(p.name)}">{p.suffix.lstrip(".").upper()}</a>' for p in picture.files)
    if shown.suffix.lstrip(".") not in plots.EMBEDDABLE:  # a PDF only: linked, not shown
        return f"<figure><figcaption>{title}{links}</figcaption></figure>"
    return (f'<figure><img src="{html.escape(shown.name)}" alt="{title}"><figcaption>{title}{links}</figcaption>'
            "</figure>")


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}
th,td{border:1px solid #ccc;padding:0.25em 0.5em;text-align:right}th{background:#f3f3f3}
td:first-child,td:nth-child(2),td:nth-child(3){text-align:left}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}.notes{font-size:0.85em;color:#444}"""


def page(report: Report) -> str:
    body = [f"<h1>Report: {html.escape(report.grid.name)}</h1>",
            f"<p>{html.escape(report.summary())}. Written {_stamp()} by <code>reprogbench report</code>.</p>"]
    for s in report.sections:
        body.append(f"<h2>{html.escape(s.title)}</h2>")
        for item in s.items:
            body.append(to_html(item) if isinstance(item, Table) else _html_picture(item))
        if s.notes:
            body.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in s.notes) + "</ul>")
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>reprogbench report: "
            f"{html.escape(report.grid.name)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# --------------------------------------------------------------------------- MLflow


def log_to_mlflow(report: Report, store: Store, results_root: Path, out: Path) -> Optional[str]:
    """The report's files as artifacts of a `report <grid>` run in the grid's experiment (one run per grid,
    reused by later reports); -> its run id, or None when the grid has no experiment in the store."""
    from bench.provenance import git_commit
    from bench.track import RUN_KIND, Tracker

    experiment = store.experiment_id(report.grid.name)
    if experiment is None:
        return None
    run_file = Path(results_root) / report.grid.name / REPORT_RUN_FILE
    if run_file.is_file():
        try:
            store.client.get_run(run_file.read_text().strip())
        except Exception:  # noqa: BLE001 - a run of another store, or deleted: start a new one
            run_file.unlink()
    tracker = Tracker(store.uri, report.grid.name)
    tracker.experiment_id = experiment
    run_id = tracker.start_parent(f"report {report.grid.name}", {RUN_KIND: "report", "grid": report.grid.name,
                                                                  "git_commit": git_commit()}, run_file=run_file)
    done = sum(r.done for r in report.results)
    tracker.log_metrics(run_id, {"carbon_intensity_g_per_kwh": report.intensity, "cells_done": done,
                                 "cells_missing": len(report.results) - done})
    tracker.log_artifacts(run_id, out, "report")
    tracker.finish(run_id, "done")
    return run_id
