"""`reprogbench sweep GRID`: Ray Tune over each selected cell's search space; the best config is then run once as
a cell. Here (or on --address), or in a Ray cluster of its own in one Slurm allocation."""
from __future__ import annotations

from launch.cli import common
from launch.cli.options import add_filter, add_launcher, add_slurm, add_tracking, add_trainer_options, grid_command

HELP = ("Ray Tune over each selected cell's search space (ASHA stops weak trials); the best config on validation "
        "is then run once as a cell, its test read once")


def add(sub) -> None:
    p = grid_command(sub, "sweep", HELP)
    p.add_argument("--samples", type=int, required=True, metavar="N", help="configs sampled per cell")
    add_filter(p)
    p.add_argument("--scheduler", choices=["asha", "fifo"], default="asha",
                   help="asha: stop weak trials at epochs 1, rf, rf^2, ... (default); fifo: run every trial out")
    p.add_argument("--reduction-factor", type=int, default=2, metavar="RF",
                   help="ASHA keeps the best 1/RF of trials at each rung (default 2)")
    p.add_argument("--search", choices=["random", "optuna"], default="random",
                   help="random sampling (default) or Optuna's TPE; both seeded by the cell's seed")
    p.add_argument("--max-concurrent", type=int, metavar="K",
                   help="trials at once (default: as many as the Ray cluster's CPUs/GPUs hold; never more)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs each trial asks Ray for (default 1)")
    p.add_argument("--gpus-per-trial", type=float,
                   help="GPUs each trial asks Ray for (default: 1 when the cluster has GPUs, else 0)")
    p.add_argument("--address", help="join this Ray cluster (auto: the one started on this node, or "
                   "$RAY_ADDRESS); default: start Ray on this machine")
    add_launcher(p, "sweep", "local: sweep here or on --address (default); slurm: submit a job that starts a Ray "
                 "cluster in one allocation (slurm/ray-cluster.sh) and runs this sweep on it")
    add_slurm(p, profile="a profile YAML or a name in slurm/profiles/ (as for run)",
              time="the whole sweep's time limit: minutes or D-HH:MM:SS (default 60)",
              nodes="nodes of the Ray cluster (default 1)", wait="block until the job ends, then print the table",
              per_cell=False)
    add_tracking(p)
    add_trainer_options(p)
    p.set_defaults(func=main)


def main(args) -> int:
    from launch.launchers import LaunchJob, for_command
    from launch.sweep_records import SweepOptions, check_sweepable

    grid, cells = common.load(args)
    common.check_something_runs(args, grid, cells)
    options = SweepOptions(args.samples, args.scheduler, args.search, args.max_concurrent, args.address,
                           args.cpus_per_trial, args.gpus_per_trial, args.reduction_factor)
    check_sweepable(grid, cells)
    launcher = for_command("sweep", args.launcher)
    profile = common.slurm_profile(args) if launcher.takes_profile else None
    settings = common.run_settings(args, pack=1)
    common.check_pending_inputs(args, grid, cells, settings)
    return launcher.launch(LaunchJob(grid, cells, settings, common.grid_arg(args), wait=args.wait, profile=profile,
                                     sweep=options))
