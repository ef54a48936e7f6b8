"""`reprogbench bench`: each fast path against the naive path it replaces, appended to BENCHMARKS.md."""
from __future__ import annotations

import shlex
from pathlib import Path


def add(sub) -> None:
    p = sub.add_parser("bench", help="measure the fast paths against the naive ones; append to BENCHMARKS.md",
                       description=main.__doc__)
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when visible, else cpu")
    p.add_argument("--quick", action="store_true", help="smaller sets and fewer epochs (a few minutes on 2 CPU "
                   "cores); the ratios keep their meaning")
    p.add_argument("--only", action="append", metavar="NAME", help="run only this measurement; repeatable: "
                   "frozen, data, linear_probe, pack, ddp, grid, help, gpu")
    p.add_argument("--output", default="BENCHMARKS.md", help="markdown file the results are appended to "
                   "(default ./BENCHMARKS.md)")
    p.add_argument("--no-append", action="store_true", help="print only")
    p.add_argument("--workdir", help="keep the grids and results the measurements write here (default: a "
                   "temporary folder, removed afterwards)")
    # no --weights-dir flag: the measurements use no ImageNet weights; $REPROGBENCH_WEIGHTS still applies
    p.set_defaults(func=main, weights_dir=None)


def main(args) -> int:
    """Each fast path against the naive path it replaces, measured in one run; appended to BENCHMARKS.md."""
    from bench.registry import UnknownName
    from bench.speed import report
    from launch.speed import measurements  # bench's own measurements, plus the launchers' (--workers)

    table = measurements()
    unknown = [n for n in args.only or [] if n not in table]
    if unknown:
        raise UnknownName(f"unknown measurement {unknown[0]!r}; known: {', '.join(table)}")
    command = "reprogbench " + shlex.join(args.argv)
    output = None if args.no_append else Path(args.output)
    return report.main(args.device, args.quick, args.only, output, args.workdir, command, table)
