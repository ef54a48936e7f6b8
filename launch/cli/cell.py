"""`reprogbench cell GRID ID`: one cell in the foreground, what torchrun (and plain sbatch arrays) launch."""
from __future__ import annotations

import sys

from launch.cli import common
from launch.cli.options import add_tracking, add_trainer_options, grid_command

HELP = "run one cell by id in the foreground (e.g. under torchrun)"


def add(sub) -> None:
    p = grid_command(sub, "cell", HELP, positionals=("cell_id",))
    add_tracking(p)
    add_trainer_options(p)
    p.set_defaults(func=main)


def main(args) -> int:
    from bench.files import cell_dir
    from bench.grid import GridError
    from bench.record import cell_status
    from launch.allocation import export_srun_group
    from launch.interrupts import StopOnSignals, exit_status
    from launch.local import distributed_rank, execute_cell

    export_srun_group()  # before anything reads RANK: several srun tasks train one cell together
    grid = common.load_grid(args)
    cells = grid.by_id()
    if args.cell_id not in cells:
        raise GridError(f"{grid.path}: no cell {args.cell_id!r}; `reprogbench ls {args.grid}` lists them")
    settings = common.run_settings(args, pack=1)
    if cell_status(cell_dir(settings.results_root, grid.name, args.cell_id)) == "done":
        print(f"{args.cell_id}: already done")  # array tasks rerun after a requeue find finished cells here
        return 0
    common.check_pending_inputs(args, grid, [cells[args.cell_id]], settings)
    with StopOnSignals():  # under torchrun: torchrun forwards its SIGINT / SIGTERM to every rank as SIGTERM
        outcome = execute_cell(cells[args.cell_id], settings, log_epochs=distributed_rank() == 0)
    if outcome.status == "interrupted":
        if distributed_rank() == 0:
            print(f"interrupted: {args.cell_id}: {outcome.message}; rerun the same command to continue",
                  file=sys.stderr)
        from bench import stop

        return exit_status(stop.requested() or 15)  # 15: SIGTERM
    if outcome.status != "done":
        print(f"failed: {args.cell_id}: {outcome.message}", file=sys.stderr)
        return common.EXIT_FAILED
    return 0
