"""`reprogbench prepare`: the login-node step that fetches and verifies what grids (or named datasets / weights)
need, so compute nodes run offline."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from launch.cli import common
from launch.cli.options import add_input_dirs, add_max_cells


def add(sub) -> None:
    p = sub.add_parser("prepare", help="fetch and verify the datasets and ImageNet weights a grid needs (on a "
                       "login node with internet)", description=main.__doc__)
    p.add_argument("targets", nargs="*", metavar="GRID_OR_DATASET",
                   help="grids (shipped name or YAML file: everything their cells read) or dataset names")
    p.add_argument("--weights", action="append", default=[], metavar="BACKBONE",
                   help="also the pretrained weights of these backbones, short or library names (e.g. resnet18, "
                        "timm:resnet18.a1_in1k; torch hub files into the torch hub cache, Hugging Face hub files "
                        "into its cache); repeatable")
    add_max_cells(p, "), as run does")
    add_input_dirs(p)
    p.set_defaults(func=main)


def main(args) -> int:
    """Login-node step: fetch and verify what grids (or named datasets / weights) need, so compute nodes run
    offline; reports each input as present, fetched or missing, and exits 2 if any is still missing."""
    from bench.data import default_data_root
    from bench.registry import UnknownName
    from launch.prepare import inputs_of, prepare, report

    if not args.targets and not args.weights:
        raise UnknownName("name a grid (e.g. thesis_table_3_1), datasets, or --weights BACKBONE to prepare")
    root = Path(args.data_root or default_data_root())
    inputs = inputs_of(args.targets, args.weights, root, args.max_cells)  # every name checked before any download
    outcomes = prepare(inputs, root)
    print(report(outcomes))
    missing = [o.name for o in outcomes if o.status == "missing"]
    if missing:
        print(f"reprogbench: error: {len(missing)} of {len(outcomes)} input(s) could not be fetched "
              f"({', '.join(missing)}); each row above says why: run `reprogbench prepare` where there is internet "
              "(a login node), into the same --data-root / --weights-dir the compute nodes read, and put what it "
              "cannot fetch (a hand download) where its row says", file=sys.stderr)
        return common.EXIT_BAD_INPUT
    print(f"all {len(outcomes)} input(s) present under {root}"
          + (f" and {os.environ['REPROGBENCH_WEIGHTS']}" if os.environ.get("REPROGBENCH_WEIGHTS") else ""))
    return 0
