"""The report's figures and pages for a reader: `--fig-format` (PNG at 300 dpi, PDF, SVG), readable method and
dataset names, a chance line at 100 / classes, learning curves on shared axes, fonts of 9 pt or more, HTML
tables in a scrolling container without all-empty columns (the ratios to scratch a table of their own), and a
compact terminal summary ending with where the report is. One tiny grid (1 epoch, 200 images) is run once
through the real CLI and reported once in all three figure formats."""
from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from cli_helper import cli

from analysis import plots
from analysis.efficiency import baseline_of, by_task, figures, threshold_of
from analysis.results import group_setups, load_results
from bench.data import dataset_info
from bench.grid import load_grid
from launch.cli import main

# A digits original reprogrammed for counting squares, beside a linear probe and from scratch; seconds a cell.
GRID = """
name: figures_tiny
originals:
  - {backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 1}}
tasks: [squares]
methods:
  - {name: ar, input_size: 8, hparams: {lr: 0.05}}
  - {name: linear_probe}
  - {name: scratch}
hparams: {batch_size: 64, epochs: 2}
split: {max_train: 200}
seeds: [0]
"""
TASK = "squares"
FIGURES = ("accuracy_vs_compute_squares", "learning_curves_squares")
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    root = tmp_path_factory.mktemp("figures")
    grid_path = root / "figures_tiny.yaml"
    grid_path.write_text(GRID)
    results = root / "results"
    proc = cli("run", grid_path, "--results", results, "--no-tracking")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = root / "report"
    report = cli("report", grid_path, "--results", results, "--no-tracking", "--out", out,
                 "--fig-format", "png,pdf,svg")
    assert report.returncode == 0, report.stderr[-3000:]
    grid = load_grid(grid_path)
    return {"grid": grid, "results": results, "out": out, "proc": report}


def drawn(run, monkeypatch) -> dict:
    """Each figure function's matplotlib Figure, drawn from the fixture's results (its saving replaced)."""
    grid = run["grid"]
    setups = by_task(group_setups(load_results(grid, grid.cells, run["results"], None)))[TASK]
    caught = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path, formats: caught.setdefault(path.stem, fig) and [path])
    plots.accuracy_vs_compute(TASK, [figures(s, 0.0) for s in setups], run["out"] / "a.png")
    base = baseline_of(next(s for s in setups if s.method.is_baseline), setups)
    plots.learning_curves(TASK, setups, threshold_of(figures(base, 0.0)), run["out"] / "l.png")
    return {"scatter": caught["a"], "curves": caught["l"]}


def svg_text(path) -> str:
    root = ET.parse(path).getroot()
    return "\n".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))


@pytest.mark.slow
def test_each_figure_is_written_in_each_asked_format(reported):
    out = reported["out"]
    for stem in FIGURES:
        assert (out / f"{stem}.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert (out / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
        assert ET.parse(out / f"{stem}.svg").getroot().tag == f"{SVG}svg"
    assert {p.suffix for p in out.iterdir() if p.stem in FIGURES} == {".png", ".pdf", ".svg"}
    page = (out / "report.html").read_text()
    for stem in FIGURES:  # the page shows the PNG and links each file
        assert f'<img src="{stem}.png"' in page
        assert all(f'href="{stem}.{fmt}"' in page for fmt in ("png", "pdf", "svg"))


@pytest.mark.slow
def test_png_figures_are_300_dpi(reported):
    from PIL import Image

    for stem in FIGURES:
        with Image.open(reported["out"] / f"{stem}.png") as image:
            assert image.info["dpi"] == pytest.approx((plots.DPI, plots.DPI), abs=0.01)
            assert plots.DPI == 300


@pytest.mark.parametrize("value, needle", [
    ("png,jpg", "unknown figure format 'jpg'"),
    (" , ", "no figure format given"),
])
def test_a_bad_figure_format_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, value, needle):
    results = tmp_path / "results"
    assert main(["report", "demo", "--results", str(results), "--fig-format", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reprogbench: error: ") and needle in err[0], err
    assert "png, pdf, svg" in err[0]  # says what it takes
    assert not results.exists()


@pytest.mark.slow
def test_figures_name_methods_and_datasets_as_a_reader_would(reported):
    text = svg_text(reported["out"] / "accuracy_vs_compute_squares.svg")  # SVG text kept as text
    for name in ("Elsayed AR", "linear probe", "from scratch", "counting squares", "tiny CNN trained on digits"):
        assert name in text, name
    curves = svg_text(reported["out"] / "learning_curves_squares.svg")
    assert "Elsayed AR" in curves and "linear probe" in curves and "from scratch" in curves
    for registry_id in ("linear_probe", "test_tinycnn"):
        assert registry_id not in text and registry_id not in curves, registry_id


def chance_lines(ax, level: float) -> list:
    """Horizontal lines across the whole panel (x from 0 to 1 in axes coordinates) at `level` (a tiny model's
    points may sit at chance too, so a marker there is not the line)."""
    return [line for line in ax.get_lines() if list(line.get_xdata()) == [0, 1]
            and len(line.get_ydata()) == 2 and all(y == pytest.approx(level) for y in line.get_ydata())]


@pytest.mark.slow
def test_accuracy_figures_draw_chance_at_100_over_the_classes(reported, monkeypatch):
    chance = 100.0 / dataset_info(TASK).num_classes
    figs = drawn(reported, monkeypatch)
    (scatter,) = figs["scatter"].axes
    assert len(chance_lines(scatter, chance)) == 1
    panels = [ax for ax in figs["curves"].axes if ax.get_visible()]
    assert len(panels) == 3  # ar, linear probe and scratch, one seed each (the pretrain cell makes no model of it)
    assert all(len(chance_lines(ax, chance)) == 1 for ax in panels)
    assert chance_lines(scatter, chance)[0].get_label().startswith("chance")


@pytest.mark.slow
def test_learning_curves_share_their_axes_and_every_font_is_at_least_9_pt(reported, monkeypatch):
    from matplotlib.text import Text

    figs = drawn(reported, monkeypatch)
    panels = [ax for ax in figs["curves"].axes if ax.get_visible()]
    first = panels[0]
    for ax in panels[1:]:
        assert first.get_shared_y_axes().joined(first, ax) and first.get_shared_x_axes().joined(first, ax)
        assert ax.get_ylim() == first.get_ylim() and ax.get_xlim() == first.get_xlim()
    for fig in figs.values():
        fig.canvas.draw()  # tick labels are made when drawn
        sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert sizes and min(sizes) >= 9, sorted(sizes)[:5]


class Tables(HTMLParser):
    """Each <table>'s header and cell texts, and whether it sits in a <div class="scroll">."""

    def __init__(self):
        super().__init__()
        self.stack, self.tables = [], []

    def handle_starttag(self, tag, attrs):
        self.stack.append((tag, dict(attrs).get("class", "")))
        if tag == "table":
            self.tables.append({"scrolls": ("div", "scroll") in self.stack, "head": [], "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            (self.tables[-1]["head"] if tag == "th" else self.tables[-1]["rows"][-1]).append("")

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if self.stack and self.stack[-1][0] in ("td", "th"):
            target = self.tables[-1]["head"] if self.stack[-1][0] == "th" else self.tables[-1]["rows"][-1]
            target[-1] += data.strip()


@pytest.mark.slow
def test_html_tables_scroll_and_drop_columns_empty_in_every_row(reported):
    out = reported["out"]
    parser = Tables()
    parser.feed((out / "report.html").read_text())
    tables = parser.tables
    assert tables and all(t["scrolls"] for t in tables)
    assert ".scroll{overflow-x:auto" in (out / "report.html").read_text()
    for t in tables:
        rows = [r for r in t["rows"] if r]
        for i, name in enumerate(t["head"]):
            assert any(r[i] not in ("", "-") for r in rows), f"{name!r} is empty in every row"
    with open(out / "efficiency_squares.csv", newline="") as f:
        header = next(csv.reader(f))
    heads = [h for t in tables for h in t["head"]]
    assert "Δ vs finetune (points)" in header and "Δ vs finetune (points)" not in heads  # no finetune cell
    # the ratios to scratch: a table of their own, with the key columns that name its rows
    (ratios,) = [t for t in tables if "compute ÷ scratch" in t["head"]]
    assert ratios["head"][:2] == ["method", "original"] and "test acc %" not in ratios["head"]
    (main_table,) = [t for t in tables if "Δ vs scratch (points)" in t["head"]]
    assert "compute ÷ scratch" not in main_table["head"]


@pytest.mark.slow
def test_the_terminal_gets_a_compact_summary_and_the_reports_path(reported):
    lines = reported["proc"].stdout.strip().splitlines()
    cells, setups = len(reported["grid"].cells), 3  # ar, linear probe, scratch on the one new task
    # per task: its title, a header, a rule and a row per setup; then the counts, the path and the files written
    assert len(lines) <= setups + 3 + 8, lines
    assert f"figures_tiny: {cells} cells: {cells} done" in reported["proc"].stdout
    out = reported["out"]
    assert f"report: {out / 'report.html'}" in lines
    assert lines[-1].endswith(str(out))
    assert not any(line.startswith("|") for line in lines)  # not the Markdown tables of report.md
    assert all(len(line) <= 160 for line in lines), max(lines, key=len)


def test_a_column_group_with_nothing_computed_is_not_an_html_table_of_key_columns_only():
    from analysis.render import Column, Table, to_csv, to_html

    columns = [Column("method", key=True), Column("acc", ".1f"), Column("ratio", ".2f", group="ratios")]
    pending = Table("T", "t", columns, [["ar", None, None], ["scratch", 50.0, None]], notes=["about ratios"])
    page = to_html(pending)
    assert page.count("<table>") == 1 and "<th>ratio</th>" not in page and "about ratios" in page
    assert to_csv(pending).splitlines()[0] == "method,acc,ratio"  # the CSV keeps every column
    done = Table("T", "t", columns, [["ar", 40.0, 0.5], ["scratch", 50.0, None]], notes=["about ratios"])
    page = to_html(done)
    assert page.count("<table>") == 2 and page.count('<div class="scroll">') == 2
    assert "<h3>T: ratios</h3>" in page and page.count("<th>method</th>") == 2  # its rows named in each
    assert "about ratios" in page.split("<h3>T: ratios</h3>")[1]
