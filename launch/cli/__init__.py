"""`reprogbench`: run grids (here or on Slurm), follow them, report results, open MLflow, prepare inputs, benchmark.

Exit status: 0 all good; 1 some cell failed (or was lost with its worker); 2 bad input (a malformed grid, an
unknown name, a missing file); 130 / 143 stopped by SIGINT / SIGTERM (rerun the same command to continue).

One module per command (`add(sub)` declares its parser from the shared option groups of `launch.cli.options`,
`main(args)` runs it); building the parser imports neither torch nor the grid code, so `--help` is quick.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from launch.cli import bench, cell, common, export, ls, prepare, report, run, status, sweep, sync, ui

COMMANDS = (run, status, ls, sweep, cell, report, export, ui, sync, prepare, bench)  # the order `--help` lists them


class VersionAction(argparse.Action):
    """`--version`: the installed distribution's version, read only when asked (importlib.metadata is not free)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the installed reprogbench's version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("reprogbench")
        except PackageNotFoundError:  # run from a checkout that was never pip-installed
            found = "unknown (not installed: pip install -e .)"
        print(f"reprogbench {found}")  # on stdout, as argparse's own version action prints
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reprogbench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add(sub)
    return parser


def one_line(text: str) -> str:
    """A message as one printable line: a hostile name's newlines and control characters are shown escaped."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], text)


def bad_input_errors() -> tuple[type[BaseException], ...]:
    """The errors that mean bad input (exit 2, one line): imported only once a command runs."""
    from analysis.errors import ReportError, StoreUnreadable
    from bench.data import DatasetMissing
    from bench.data.listing import BadListing
    from bench.files import ResultsUnusable, UnsafePath
    from bench.grid import GridError
    from bench.models import WeightsMissing
    from bench.registry import UnknownName
    from bench.train.batch_progress import BadProgressSetting
    from launch.mlflow_ui import UiError
    from launch.preflight import InputsMissing
    from launch.slurm import SlurmUnavailable
    from launch.sweep_records import SweepError

    return (GridError, UnknownName, DatasetMissing, WeightsMissing, InputsMissing, SlurmUnavailable, ReportError,
            StoreUnreadable, UiError, SweepError, BadListing, ResultsUnusable, UnsafePath, BadProgressSetting)


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The arguments, with `key.path=value` overrides taken from among the options too: argparse puts positionals
    after an option (`run demo --workers 2 seeds=[0,1]`) among the unrecognised ones."""
    from bench.grid.edits import looks_like_override

    args, extra = parser.parse_known_args(argv)
    overrides = [item for item in extra if looks_like_override(item)]
    rest = [item for item in extra if not looks_like_override(item)]
    if rest or (overrides and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(rest or overrides)}")
    if overrides:
        args.overrides = [*args.overrides, *overrides]
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    from launch.cli.completion import complete_if_asked

    complete_if_asked(parser)  # a shell's tab press: prints the completions and exits
    args = parse(parser, argv)
    args.argv = argv  # the command as typed, recorded beside benchmark figures
    from bench.models.weights import WEIGHTS_ENV, use_weights_dir
    from bench.train.batch_progress import progress_every_s

    errors = bad_input_errors()
    from bench.files import write_under

    if hasattr(args, "results"):  # the folders this command writes: links planted inside them are never followed
        write_under(common.results_root(args))
    if getattr(args, "out", None):
        write_under(Path(args.out).expanduser().absolute().parent)
    weights_dir = args.weights_dir or os.environ.get(WEIGHTS_ENV)
    if weights_dir:
        use_weights_dir(weights_dir)  # exported: worker processes and Slurm jobs inherit it
    if vars(args).get("data_root") is not None:
        # exported too: what reads a dataset's metadata without a root (a `folder:NAME` task's class folders at
        # grid expansion) then looks where the command was told
        from bench.data.roots import DATA_ENV

        os.environ[DATA_ENV] = str(Path(args.data_root).expanduser().resolve())
    try:
        progress_every_s()  # a bad value is one line now, not an error inside every cell
        return args.func(args)
    except errors as exc:
        print(f"reprogbench: error: {one_line(str(exc))}", file=sys.stderr)
        return common.EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("reprogbench: interrupted; finished cells are kept, rerun the same command to go on", file=sys.stderr)
        return 130
