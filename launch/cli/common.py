"""What the commands share once their arguments are parsed: the results folder, the tracking URI, the grid and
its selected cells, the run settings, and the check of inputs before anything runs."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from launch.launchers import EXIT_FAILED  # noqa: F401 - the commands' exit statuses, in one place

EXIT_BAD_INPUT = 2  # a malformed grid, an unknown name, a missing file


def results_root(args) -> Path:
    return Path(args.results or os.environ.get("REPROGBENCH_RESULTS", "results"))


def tracking_uri(args, off: bool = False) -> str | None:
    """The MLflow URI the command logs to or reads (None when `off`)."""
    from bench.redact import move_credentials_to_env
    from bench.track import default_tracking_uri

    if off:
        return None
    # credentials go to the variables MLflow / libpq read, so no record, job file or printed line holds them
    return move_credentials_to_env(args.tracking_uri or default_tracking_uri(results_root(args)))


def load_grid(args):
    from bench.grid import load_grid

    return load_grid(args.grid, data_root=args.data_root, max_cells=args.max_cells, overrides=args.overrides)


def grid_arg(args) -> str:
    """The grid as the user named it, overrides included: what the commands we print (`reprogbench status ...`)
    must repeat to find the same cells."""
    import shlex

    return shlex.join([args.grid, *args.overrides])


def load(args) -> tuple:
    """The grid (its notes printed) and the cells `--filter` selects; a filter that matches no cell is a GridError
    (skipped cells count: `ls` shows them and `prepare` fetches what they lack)."""
    from bench.grid import parse_filters
    from bench.grid.filters import check_selects

    chosen = parse_filters(args.filter)  # a bad key is one line before the grid is even read
    grid = load_grid(args)
    check_selects(grid.cells + grid.skipped, chosen, grid.name)
    for note in grid.notes:
        print(f"note: {note}", file=sys.stderr)
    return grid, grid.select(chosen)


def check_something_runs(args, grid, cells) -> None:
    """A grid (or filter) whose every cell is skipped is a GridError saying why, not a run of 0 cells, exit 0."""
    if cells or grid.unprepared:  # unprepared cells get check_pending_inputs' line naming what is missing
        return
    from collections import Counter

    from bench.grid import GridError, parse_filters
    from bench.grid.filters import select

    skipped = select(grid.skipped, parse_filters(args.filter))
    if skipped:
        why = "; ".join(f"{n} cell(s): {reason}" for reason, n in Counter(c.skip_reason for c in skipped).items())
        raise GridError(f"every selected cell of {grid.name} is skipped, so nothing would run ({why}); change the "
                        f"grid's methods or backbones (`reprogbench ls {args.grid}` lists them)")


def run_settings(args, pack: int):
    """How the cells run, from the tracking, input-folder and trainer options."""
    from bench.files import check_results_root
    from launch.local import RunSettings

    check_results_root(results_root(args))  # a file or a read-only folder is one line, before anything is written
    return RunSettings(results_root(args), args.data_root, tracking_uri(args, off=args.no_tracking), pack=pack,
                       cache_features=not args.no_feature_cache, compile=args.compile, data_path=args.data_path)


def check_pending_inputs(args, grid, cells, settings) -> None:
    """Every dataset and weights file the unfinished cells read is there, before anything runs or is queued."""
    from bench.files import RESULT, cell_dir, check_inside
    from bench.record import cell_status
    from launch.preflight import check_inputs

    for cell in cells:  # a grid's or cell's folder replaced by a link: one line now, not a failure in every cell
        check_inside(cell_dir(settings.results_root, grid.name, cell.cell_id) / RESULT)
    check_inputs([c for c in cells if cell_status(cell_dir(settings.results_root, grid.name, c.cell_id)) != "done"],
                 args.data_root, args.grid)
    if not cells and grid.unprepared:  # nothing runnable because nothing is prepared: say so, never "0 cells run"
        from bench.grid import parse_filters
        from bench.grid.filters import select

        check_inputs(select(grid.unprepared, parse_filters(args.filter)), args.data_root, args.grid)


def slurm_profile(args):
    """The `--profile` with the Slurm flags on top, checked before anything else happens."""
    from launch.slurm_profile import load_profile

    return load_profile(args.profile, {
        "partition": args.partition, "time": args.time, "nodes": args.nodes, "gpus_per_node": args.gpus_per_node,
        "tasks_per_node": args.tasks_per_node, "array_parallelism": args.array_parallelism})
