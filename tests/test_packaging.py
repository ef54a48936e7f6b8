"""What a non-editable install ships: every file under slurm/ is package data, and the code finds the shipped
files through the package (`slurm.shipped`), not through the repository's layout."""
from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

import slurm
from launch.slurm_profile import PROFILES_DIR, load_profile

REPO = Path(__file__).resolve().parent.parent


def test_every_file_under_slurm_is_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert any(fnmatch.fnmatch("slurm", pattern) for pattern in config["packages"]["find"]["include"])
    globs = config["package-data"]["slurm"]
    folder = REPO / "slurm"
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".py"]
    assert files and [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)] == []


def test_profiles_and_scripts_are_found_through_the_package():
    assert PROFILES_DIR == slurm.shipped("profiles") and (PROFILES_DIR / "local.yaml").is_file()
    assert load_profile("local", {}).partition == "local"
    assert slurm.shipped("ray-cluster.sh").is_file() and slurm.shipped("templates", "cells.sbatch").is_file()
