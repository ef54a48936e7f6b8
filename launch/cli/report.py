"""`reprogbench report GRID`: tables and plots from a grid's results (never trains)."""
from __future__ import annotations

import os
from pathlib import Path

from launch.cli import common
from launch.cli.options import add_filter, add_tracking, grid_command

HELP = ("tables and plots from the grid's results: the thesis's tables beside ours, each method against "
        "from-scratch (accuracy, compute, energy, CO2), time to accuracy; never trains")


def add(sub) -> None:
    p = grid_command(sub, "report", HELP)
    p.add_argument("--out", help="folder for the report (default RESULTS/GRID/report)")
    p.add_argument("--format", help="comma-separated: md, html, csv (each table, and cells.csv: one row per "
                   "cell), parquet (cells.parquet) (default all four; parquet where pyarrow is installed); the "
                   "figures are always written")
    p.add_argument("--fig-format", default="png", metavar="FORMATS",
                   help="comma-separated figure formats: png (300 dpi), pdf, svg (text kept as text) "
                        "(default png; the HTML page shows the PNG or SVG and links the others)")
    p.add_argument("--carbon-intensity", type=float, metavar="G_PER_KWH",
                   help="g CO2e per kWh of the electricity used (default $REPROGBENCH_CARBON_INTENSITY, else "
                        "475, the world average, IEA 2019)")
    add_filter(p)
    add_tracking(p, "local records only, no MLflow (report: read no MLflow store and log nothing to it)")
    p.set_defaults(func=main)


def main(args) -> int:
    """Tables and plots from a grid's results (never trains): the thesis's tables beside ours, each method against
    from-scratch (accuracy, compute, energy, CO2 and their ratios), time to the scratch accuracy, mean / sd / n
    across seeds; PNGs and an HTML page; logged to the grid's MLflow experiment as a `report` run."""
    from analysis import report
    from analysis.results import open_store
    from analysis.summary import terminal_summary

    formats = report.parse_formats(args.format)  # every input checked before anything is read or written
    fig_formats = report.parse_fig_formats(args.fig_format)
    intensity, origin = report.carbon_intensity(args.carbon_intensity)
    grid, cells = common.load(args)
    results = common.results_root(args)
    explicit = bool(args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
    store = open_store(common.tracking_uri(args, off=args.no_tracking), explicit)
    out = Path(args.out) if args.out else results / grid.name / "report"
    built = report.build(grid, cells, results, store, out, intensity, origin, fig_formats)
    written = report.write(built, out, formats)
    shown = next((p for suffix in (".html", ".md") for p in written if p.suffix == suffix), out)
    print(terminal_summary(built.tables, built.summary(), str(shown)))
    print(f"wrote {len(written)} file(s) to {out}")
    if store is not None:
        run_id = report.log_to_mlflow(built, store, results, out)
        if run_id:
            print(f"logged as artifacts of MLflow run {run_id} ('report {grid.name}'); `reprogbench ui {args.grid}"
                  + (f" --results {args.results}" if args.results else "") + "` shows it")
        else:
            print(f"not logged to MLflow: {store.uri} has no experiment {grid.name!r}")
    return 0
