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
