"""The launcher contract: every registered launcher says what it is and what it needs, the CLI finds it by its
`--launcher` value (a wrong value is one line naming the known ones), and it runs a 2-cell grid for real: the
local pool here, Slurm job arrays on the local Slurm cluster, a Ray Tune sweep here, and that sweep in a Ray
cluster inside one Slurm allocation. All but the local one are slow (Ray, Slurm)."""
from __future__ import annotations

from pathlib import Path

import pytest
from cli_helper import cli

from bench.files import cell_dir, read_json
from bench.grid import load_grid
from bench.record import cell_status
from launch.cli import main
from launch.launchers import all_launchers, for_command, options
from launch.sweep_records import SUMMARY, sweep_dir

TWO_CELLS = """
name: two_cells
originals: [{backbone: test_tinycnn, methods: [scratch]}]
tasks: [digits]
methods: [{name: scratch, search: {lr: {choice: [0.001, 0.01]}}}]
hparams: {epochs: 1, batch_size: 64}
split: {max_train: 128}
seeds: [0, 1]
"""

# what each command adds to run a launcher's 2 cells to the end: a sweep needs samples; Slurm a profile and --wait
COMMAND_ARGS = {"run": [], "sweep": ["--samples", "1", "--scheduler", "fifo"]}
SLURM_ARGS = ["--profile", "local", "--wait"]


def heavy(entry) -> bool:
    """Starts Ray or needs the local Slurm cluster: seconds to minutes on 2 cores."""
    return entry.takes_profile or entry.command == "sweep"


LAUNCHERS = [pytest.param(e, id=e.name, marks=[pytest.mark.slow] if heavy(e) else []) for e in all_launchers()]


def write_grid(folder: Path) -> Path:
    path = folder / "two_cells.yaml"
    path.write_text(TWO_CELLS)
    return path


@pytest.mark.parametrize("entry", [pytest.param(e, id=e.name) for e in all_launchers()])
def test_every_launcher_says_what_it_is_and_the_cli_finds_it(entry):
    assert entry.command in COMMAND_ARGS and entry.option in options(entry.command)
    assert entry.needs.strip() and entry.summary.strip() and isinstance(entry.takes_profile, bool)
    assert type(for_command(entry.command, entry.option)) is entry


def test_each_command_offers_local_first_and_one_launcher_per_value():
    for command in COMMAND_ARGS:
        values = [e.option for e in all_launchers() if e.command == command]
        assert len(values) == len(set(values)) and options(command)[0] == "local"


@pytest.mark.parametrize("command", sorted(COMMAND_ARGS))
def test_an_unknown_launcher_is_one_line_listing_the_known_ones(command, tmp_path, capsys):
    grid = write_grid(tmp_path)
    code = main([command, str(grid), *COMMAND_ARGS[command], "--launcher", "warp", "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "'warp'" in err[0] and ", ".join(options(command)) in err[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("entry", LAUNCHERS)
def test_every_launcher_runs_a_two_cell_grid(entry, request, tmp_path):
    if entry.takes_profile:
        request.getfixturevalue("slurm_cluster")
    grid_path = write_grid(tmp_path)
    results = tmp_path / "results"
    proc = cli(entry.command, grid_path, "--launcher", entry.option, "--results", results, "--no-tracking",
               *COMMAND_ARGS[entry.command], *(SLURM_ARGS if entry.takes_profile else []), timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    grid = load_grid(grid_path)
    assert len(grid.cells) == 2
    for cell in grid.cells:
        if entry.command == "sweep":  # a sweep's outcome is its summary, with the best config run once as a cell
            summary = read_json(sweep_dir(results, grid.name, cell.cell_id) / SUMMARY)
            assert summary["status"] == "done" and summary["tuned"]["test_acc"] is not None
        else:
            assert cell_status(cell_dir(results, grid.name, cell.cell_id)) == "done"
