"""`reprogbench status GRID`: per cell, done, failed, pending, running or requeued, with its Slurm job id and log
(the cells' records and squeue; no sacct needed)."""
from __future__ import annotations

from launch.cli import common
from launch.cli.options import add_filter, grid_command

HELP = ("per cell: done, failed, pending, running or requeued, with its Slurm job and log (reads the cells' records "
        "and squeue; no sacct)")


def add(sub) -> None:
    p = grid_command(sub, "status", HELP)
    add_filter(p)
    p.add_argument("--wait", action="store_true",
                   help="block until no cell is queued or running and their jobs have left the queue")
    p.set_defaults(func=main)


def main(args) -> int:
    from launch.launchers.slurm import show_status

    grid, cells = common.load(args)
    return show_status(grid, cells, common.results_root(args), wait=args.wait)
