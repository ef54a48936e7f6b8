"""The command line as a user meets it: a quick parser, `--version`, filter errors, overrides, `--dry-run` and shell
completion, each through the real CLI in a subprocess (tests/cli_helper.py)."""
from __future__ import annotations

import subprocess
import sys

from cli_helper import REPO, cli

HEAVY = ("torch", "mlflow", "ray", "accelerate", "pydantic", "yaml")  # what a command imports once it runs


def test_building_the_parser_imports_nothing_heavy():
    code = ("import sys, launch.cli; launch.cli.build_parser().format_help(); "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_version_is_the_installed_distributions():
    from importlib.metadata import version

    proc = cli("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"reprogbench {version('reprogbench')}\n"


TINY = """\
name: tiny
originals: [{backbone: smallcnn, trained_on: digits, hparams: {epochs: 1}}]
tasks: [digits, squares]
methods: [{name: ar, input_size: 16}, {name: scratch}]
hparams: {epochs: 2}
seeds: [0]
"""


def tiny_grid(tmp_path, text: str = TINY, name: str = "tiny"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def one_error_line(proc) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_a_filter_that_matches_nothing_lists_the_values_present(tmp_path):
    grid, results = tiny_grid(tmp_path), tmp_path / "results"
    line = one_error_line(cli("run", grid, "--filter", "method=linear_probe", "--results", results, "--no-tracking"))
    assert "method=linear_probe" in line and line.endswith("its method values: ar, pretrain, scratch")
    line = one_error_line(cli("ls", grid, "--filter", "task=digits", "--filter", "seed=3"))
    assert line.endswith("no cell of tiny has that seed; its seed values: 0")
    # each value exists, not together: the values present beside the others are listed
    line = one_error_line(cli("status", grid, "--filter", "method=pretrain", "--filter", "task=squares"))
    assert line.endswith("no cell of tiny with method=pretrain has that task; their task values: digits")
    assert not results.exists()


def test_a_filter_key_that_does_not_exist_is_one_line(tmp_path):
    results = tmp_path / "results"
    line = one_error_line(cli("run", tiny_grid(tmp_path), "--filter", "lr=0.1", "--results", results))
    assert "'lr=0.1'" in line and line.endswith("KEY one of method, task, backbone, seed, original, id")
    assert not results.exists()


def ids(proc) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_overrides_give_the_cell_ids_of_the_same_edit_of_the_file(tmp_path):
    edited = TINY.replace("input_size: 16", "input_size: 20").replace("hparams: {epochs: 2}", "hparams: {epochs: 1}")
    edited = edited.replace("seeds: [0]", "seeds: [0, 1]")
    (tmp_path / "edited").mkdir()
    edited_path = tiny_grid(tmp_path / "edited", edited)  # same name (`name: tiny`), same folder name
    # one override among the options: argparse alone would refuse it there
    overridden = ids(cli("ls", tiny_grid(tmp_path), "hparams.epochs=1", "--ids", "seeds=[0, 1]",
                         "methods.0.input_size=20"))
    assert overridden == ids(cli("ls", edited_path, "--ids"))
    original = ids(cli("ls", tiny_grid(tmp_path), "--ids"))
    assert len(overridden) == 9 and len(original) == 5  # pretrain, then ar and scratch x two tasks x seeds
    assert overridden[0] == original[0]  # the pretrain cell's own epochs were not overridden
    assert not set(overridden[1:]) & set(original)


def test_a_bad_override_is_one_line_and_writes_nothing(tmp_path):
    grid, results = tiny_grid(tmp_path), tmp_path / "results"
    line = one_error_line(cli("run", grid, "hparams.epochs=0", "--results", results))
    assert line.endswith("hparams.epochs: Input should be greater than or equal to 1 (got 0)")
    line = one_error_line(cli("run", grid, "--results", results, "methods.2.input_size=20"))
    assert line.endswith("override 'methods.2.input_size=20': methods is a list of 2; index it by 0..1, not '2'")
    assert not results.exists()


def plan(proc) -> tuple[list[str], str]:
    """The cell ids a dry run lists, and its totals line."""
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    listed = [line.split()[0] for line in lines if line.startswith("    ")]
    return listed, lines[-1]


def test_a_dry_run_prints_waves_packs_and_epochs_and_starts_nothing(tmp_path):
    grid, results = tiny_grid(tmp_path), tmp_path / "results"
    listed, total = plan(cli("run", grid, "--dry-run", "--results", results))
    every = ids(cli("ls", grid, "--ids"))
    assert sorted(listed) == sorted(every) and listed[0] == every[0]  # the pretrain cell first, as run takes it
    assert total.startswith("total: 5 cell(s), 5 pack(s), 9 epoch(s) to train")  # pretrain 1 + 4 cells x 2
    assert not results.exists()
    # overrides change the plan as they change the cells
    assert plan(cli("run", grid, "hparams.epochs=1", "--dry-run", "--results", results))[1].startswith(
        "total: 5 cell(s), 5 pack(s), 5 epoch(s)")
    # after the pretrain cell has run, the dry run counts it done and plans only the rest, in one wave
    assert cli("run", grid, "--filter", "method=pretrain", "--results", results, "--no-tracking").returncode == 0
    proc = cli("run", grid, "--dry-run", "--results", results)
    listed, total = plan(proc)
    assert "1 already done, 4 to run" in proc.stdout.splitlines()[0] and "wave 2" not in proc.stdout
    assert sorted(listed) == sorted(every[1:]) and total.startswith("total: 4 cell(s), 4 pack(s), 8 epoch(s)")


def complete(line: str, tmp_path) -> list[str]:
    """What the shell gets for a tab at the end of `line` (argcomplete's protocol, its answer sent to a file)."""
    out = tmp_path / "completions"
    env = {"_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": "\n", "COMP_LINE": line, "COMP_POINT": str(len(line)),
           "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}
    proc = cli(env=env)
    assert proc.returncode == 0, proc.stderr
    return [word.strip() for word in out.read_text().split("\n") if word.strip()]


def test_the_shell_completes_commands_grids_and_filter_values(tmp_path):
    assert complete("reprogbench r", tmp_path) == ["run", "report"]
    assert "thesis_table_3_1" in complete("reprogbench run thesis", tmp_path)
    assert complete("reprogbench ls demo --filter ta", tmp_path) == ["task="]
    tasks = complete("reprogbench run demo --filter task=fashion", tmp_path)
    assert "task=fashion_mnist" in tasks and all(t.startswith("task=fashion") for t in tasks)
    assert complete("reprogbench status demo --filter method=linear", tmp_path) == ["method=linear_probe"]
