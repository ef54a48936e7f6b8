"""`reprogbench sync GRID`: upload to MLflow what the cells' records hold and MLflow lacks (after tracking was
offline); by cell_id, so a second sync creates nothing."""
from __future__ import annotations

import sys

from launch.cli import common
from launch.cli.options import add_filter, add_tracking, grid_command

HELP = ("upload to MLflow what the cells' records hold and MLflow lacks (after tracking was offline); by cell_id: "
        "a second sync creates no run")


def add(sub) -> None:
    p = grid_command(sub, "sync", HELP)
    add_filter(p)
    add_tracking(p, no_tracking=None)  # syncing is uploading to MLflow
    p.set_defaults(func=main)


def main(args) -> int:
    from bench.track import TrackingUnavailable
    from launch.sync import sync_grid

    grid, cells = common.load(args)
    try:
        summary = sync_grid(grid, cells, common.results_root(args), common.tracking_uri(args))
    except TrackingUnavailable as exc:
        print(f"reprogbench: error: {exc}; nothing more was uploaded: start the server (or give --tracking-uri) "
              f"and run `reprogbench sync {args.grid}` again", file=sys.stderr)
        return common.EXIT_FAILED
    print(summary.line(grid.name))
    return 0
