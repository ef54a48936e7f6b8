"""`reprogbench ls GRID`: the grid's cells with id and status, or only their ids (one wave's, for sbatch arrays);
`reprogbench ls --backbones`: the backbone names a grid can use (short names, and each library's family)."""
from __future__ import annotations

from launch.cli import common
from launch.cli.options import add_filter, grid_command

HELP = "list the grid's cells with id and status (done, pending, failed)"


def add(sub) -> None:
    p = grid_command(sub, "ls", HELP, grid_optional=True)
    add_filter(p)
    p.add_argument("--backbones", action="store_true", help="list the backbone names instead (no GRID): the short "
                   "names, and each library's family (timm:, torchvision:, ...) with an example")
    p.add_argument("--ids", action="store_true", help="only the cell ids, one per line, dependencies first "
                   "(for sbatch arrays: slurm/templates/cells.sbatch)")
    p.add_argument("--wave", type=int, metavar="N", help="only the ids of wave N (1: cells with no pending "
                   "dependency, e.g. pretrain; 2: the cells that need them)")
    p.set_defaults(func=main)


def backbones_listing() -> str:
    """The short names (with the library name each stands for) and the families, as `ls --backbones` prints them."""
    from tabulate import tabulate

    from bench.models import backbone_info, list_backbones
    from bench.models.registry import FAMILIES, alias_of

    short = [[name, alias_of(name) or "", ", ".join(backbone_info(name).weights) or "random init",
              backbone_info(name).description] for name in list_backbones()]
    families = [[f"{prefix}:", FAMILIES.get(prefix).example, FAMILIES.get(prefix).description]
                for prefix in FAMILIES.names()]
    return "\n\n".join([
        "short names (an alias keeps a grid's cell ids):",
        tabulate(short, headers=["name", "same as", "weights", "description"]),
        "library names (prefix:spec; any name the library lists):",
        tabulate(families, headers=["prefix", "example", "description"]),
    ])


def main(args) -> int:
    from analysis.table import cells_table
    from bench.grid import GridError, filters, parse_filters
    from launch.preflight import Inputs, describe_missing

    if args.backbones:
        print(backbones_listing())
        return 0
    if args.grid is None:
        raise GridError("ls needs a GRID (a YAML file or a shipped grid's name), or --backbones")
    grid, cells = common.load(args)
    if args.ids or args.wave:
        from launch.local import waves

        groups = waves(cells)
        if args.wave and not 1 <= args.wave <= len(groups):
            raise GridError(f"{grid.name} has {len(groups)} wave(s); --wave takes 1..{len(groups)}")
        print("\n".join(c.cell_id for c in (groups[args.wave - 1] if args.wave else cells)))
        return 0
    unprepared = filters.select(grid.unprepared, parse_filters(args.filter))
    print(cells_table(grid, cells, common.results_root(args), unprepared))
    waiting = {c.cell_id for c in grid.unprepared}
    for cell in grid.skipped:
        if cell.cell_id not in waiting:
            print(f"skipped {cell.cell_id}  {cell.name}: {cell.skip_reason}")
    missing = Inputs.of(unprepared).missing(args.data_root)
    if missing:  # one line for all of them: each row says `not prepared`
        print(f"{len(unprepared)} cell(s) not prepared: missing {describe_missing(missing, args.data_root)}; "
              f"`reprogbench prepare {args.grid}` on a login node fetches them (or says where to get those it cannot)")
    for row, why in grid.not_run.items():
        print(f"not run: {grid.reference} row {row}: {why}")
    return 0
