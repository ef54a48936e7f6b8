"""The option groups commands share, each declared once and attached to every command that takes it.

Nothing here imports torch or the grid code: building the parser (and `--help`) stays fast.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.grid.limits import MAX_CELLS
from launch.cli.completion import filter_values, grid_names

OVERRIDES_HELP = ("edits of the grid's YAML before it is checked, as Hydra writes them: hparams.epochs=1 "
                  "'seeds=[0,1]' methods.0.hparams.lr=0.01 (values are YAML; cell ids change as the edited file's "
                  "would; give them to every command on the same cells)")


def grid_command(sub, name: str, help: str, grid_optional: bool = False,
                 positionals: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """A command on one grid: the grid (then `positionals`, then the overrides of its YAML), its results folder,
    the cell limit and the input folders."""
    p = sub.add_parser(name, help=help, description=help)
    p.add_argument("grid", nargs="?" if grid_optional else None,
                   help="a grid YAML file, or the name of a shipped grid (e.g. demo)").completer = grid_names
    for positional in positionals:
        p.add_argument(positional)
    # main() also takes them from among the options (`run demo --workers 2 seeds=[0,1]`): argparse alone would not
    p.add_argument("overrides", nargs="*", metavar="KEY.PATH=VALUE", help=OVERRIDES_HELP)
    p.add_argument("--results", help="results folder (default $REPROGBENCH_RESULTS or ./results)")
    add_max_cells(p, ": a larger grid is more often a typo than a plan)")
    add_input_dirs(p)
    return p


def add_max_cells(p: argparse.ArgumentParser, why: str) -> None:
    p.add_argument("--max-cells", type=int, default=MAX_CELLS, metavar="N",
                   help=f"refuse a grid that expands to more than N cells (default {MAX_CELLS:,}{why}")


def add_input_dirs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", type=Path, help="dataset folder (default $REPROGBENCH_DATA or "
                   "~/.cache/reprogbench/data; Debian's dataset-fashion-mnist is found on its own)")
    p.add_argument("--weights-dir", type=Path, help="ImageNet weights folder (default $REPROGBENCH_WEIGHTS, else "
                   "the torch hub and Hugging Face caches); give prepare and run the same one")


FILTER_HELP = ("only matching cells (and their dependencies); KEY: method, task, backbone, seed, original, id; "
               "repeatable")


def add_filter(p: argparse.ArgumentParser, help: str = "as for run") -> None:
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE", help=help).completer = filter_values


def add_launcher(p: argparse.ArgumentParser, command: str, help: str) -> None:
    """`--launcher`: checked against the launcher registry by the command, so a wrong name is one line."""
    from launch.launchers import options

    names = options(command)
    p.add_argument("--launcher", default=names[0], metavar="{" + ",".join(names) + "}", help=help)


def add_slurm(p: argparse.ArgumentParser, *, profile: str, time: str, nodes: str, wait: str,
              per_cell: bool) -> None:
    """The Slurm settings that override a profile's; `per_cell`: also the per-job-array ones of `run`."""
    group = p.add_argument_group("slurm", "with --launcher slurm; flags override the profile")
    group.add_argument("--profile", help=profile)
    group.add_argument("--partition")
    group.add_argument("--time", help=time)
    group.add_argument("--nodes", type=int, help=nodes)
    group.add_argument("--gpus-per-node", type=int)
    if per_cell:
        group.add_argument("--tasks-per-node", type=int, help="DDP ranks per node (default: one per GPU, else 1)")
        group.add_argument("--array-parallelism", type=int, help="array tasks running at once (default 64)")
    else:  # one Ray job: one task per node, no array
        p.set_defaults(tasks_per_node=None, array_parallelism=None)
    group.add_argument("--wait", action="store_true", help=wait)


TRACKING_URI_HELP = ("MLflow tracking URI (default $MLFLOW_TRACKING_URI, else a sqlite file mlflow.db in the "
                     "results folder)")


def add_tracking(p: argparse.ArgumentParser, no_tracking: str | None = "local records only, no MLflow") -> None:
    """`--tracking-uri`, and `--no-tracking` where the command can do without MLflow (`no_tracking`: its help)."""
    p.add_argument("--tracking-uri", help=TRACKING_URI_HELP)
    if no_tracking is not None:
        p.add_argument("--no-tracking", action="store_true", help=no_tracking)


def add_trainer_options(p: argparse.ArgumentParser) -> None:
    """How the trainer runs a cell, for the commands that train."""
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the backbone (worth it on GPU for long cells); compile time is "
                        "recorded apart as timing.compile_s")
    p.add_argument("--no-feature-cache", action="store_true",
                   help="head-only methods (linear_probe) run the backbone every epoch instead of training "
                        "on features computed once (the naive path, for comparison)")
    p.add_argument("--data-path", choices=("auto", "device", "stream"), default="auto",
                   help="where the images live while a cell trains: on the device whole, or streamed a batch at a "
                        "time from host memory / the decoded cache (next batch copied during the current step); "
                        "auto (default) streams when they would take over half the free device (GPU) or host "
                        "(CPU run) memory")
