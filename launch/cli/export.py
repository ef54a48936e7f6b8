"""`reprogbench export GRID`: one tidy table of every cell (spec, final metrics, timing, energy) as CSV or
parquet, the same `cells.csv` / `cells.parquet` that `report` writes (never trains)."""
from __future__ import annotations

import os
from pathlib import Path

from launch.cli import common
from launch.cli.options import add_filter, add_tracking, grid_command

HELP = "one table of every cell (spec, final metrics, timing, energy) as CSV or parquet; never trains"


def add(sub) -> None:
    p = grid_command(sub, "export", HELP)
    p.add_argument("--out", help="file to write (default RESULTS/GRID/cells.csv, or .parquet)")
    p.add_argument("--format", help="csv or parquet (default: from --out's suffix, else csv)")
    add_filter(p)
    add_tracking(p, "local records only (export: read no MLflow store)")
    p.set_defaults(func=main)


def table_format(args) -> str:
    """--format, else --out's suffix, else csv; a --format that contradicts --out's suffix is bad input."""
    from analysis.cells_table import TABLE_FORMATS, check_format
    from analysis.errors import ReportError

    suffix = Path(args.out).suffix.lstrip(".").lower() if args.out else ""
    if args.format and suffix in TABLE_FORMATS and suffix != args.format.strip().lower():
        raise ReportError(f"--format {args.format} but --out {args.out} ends in .{suffix}: give one of them")
    return check_format(args.format or (suffix if suffix in TABLE_FORMATS else "csv"))


def main(args) -> int:
    from analysis.cells_table import STEM, write_cells
    from analysis.results import load_results, open_store

    fmt = table_format(args)  # checked before anything is read or written
    grid, cells = common.load(args)
    results = common.results_root(args)
    explicit = bool(args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
    store = open_store(common.tracking_uri(args, off=args.no_tracking), explicit)
    loaded = load_results(grid, cells, results, store)
    path = write_cells(loaded, Path(args.out) if args.out else results / grid.name / f"{STEM}.{fmt}", fmt)
    done = sum(r.done for r in loaded)
    print(f"{grid.name}: wrote {len(loaded)} cell(s) ({done} done, {len(loaded) - done} not) to {path}")
    return 0
