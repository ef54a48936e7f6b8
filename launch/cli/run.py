"""`reprogbench run GRID`: the grid's pending cells, here or on Slurm, through the launcher `--launcher` names."""
from __future__ import annotations

from launch.cli import common
from launch.cli.options import (
    FILTER_HELP,
    add_filter,
    add_launcher,
    add_slurm,
    add_tracking,
    add_trainer_options,
    grid_command,
)

HELP = "run the grid's pending cells (finished ones are skipped)"


def add(sub) -> None:
    p = grid_command(sub, "run", HELP)
    p.add_argument("--workers", type=int, default=1, help="cells run at once in worker processes (default 1)")
    add_filter(p, FILTER_HELP)
    p.add_argument("--pack", type=int, default=8, metavar="K",
                   help="train up to K cells that share a frozen backbone (e.g. ar seeds, lam values) in one "
                        "backbone pass; 1 runs each cell alone (default 8)")
    add_launcher(p, "run", "local: run here (default); slurm: submit job arrays with submitit and return")
    add_slurm(p, profile="a profile YAML (partition, account, qos, time, gpus_per_node, ...), or the name of one "
              "in slurm/profiles/", time="time limit per job: minutes or Slurm's D-HH:MM:SS (default 60)",
              nodes="nodes per cell (default 1)", wait="block until every cell is done or failed and its job has "
              "left the queue (its MLflow run ended), with a progress bar, then print the status table", per_cell=True)
    p.add_argument("--dry-run", action="store_true",
                   help="print the cells run would start, in waves and packs, and the epochs left to train; start "
                        "and write nothing (missing inputs are still reported, exit 2)")
    add_tracking(p)
    add_trainer_options(p)
    p.set_defaults(func=main)


def main(args) -> int:
    from launch.launchers import LaunchJob, for_command

    grid, cells = common.load(args)
    common.check_something_runs(args, grid, cells)
    launcher = for_command("run", args.launcher)
    profile = common.slurm_profile(args) if launcher.takes_profile else None  # checked before anything happens
    settings = common.run_settings(args, pack=args.pack)
    if args.dry_run:
        from launch.plan import plan_lines

        print("\n".join(plan_lines(grid, cells, settings, args.launcher, args.workers)))
        common.check_pending_inputs(args, grid, cells, settings)  # what run would refuse, after the plan
        return 0
    common.check_pending_inputs(args, grid, cells, settings)
    return launcher.launch(LaunchJob(grid, cells, settings, common.grid_arg(args), workers=args.workers, wait=args.wait,
                                     profile=profile))
