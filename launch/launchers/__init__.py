"""Launchers: the ways a grid's cells are run, one registry entry each.

A launcher is a short class registered with `@launcher`: its metadata says which command offers it and under which
`--launcher` value (`command`, `option`), what it needs on this machine (`needs`), what it does (`summary`) and
whether it takes a Slurm profile (`takes_profile`);
`launch(job)` runs or submits the job's cells and returns the command's exit status. The CLI finds a launcher
with `for_command(command, option)`; an unknown value is one line listing the known ones. Entries live in the
modules of this package and are found by importing them all (no list to keep): local (a process pool here),
slurm (job arrays through submitit), ray (a Ray Tune sweep here or on --address), ray_slurm (that sweep inside
one Slurm allocation).
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Optional, Protocol

from bench.registry import Registry, UnknownName

if TYPE_CHECKING:
    from bench.grid import Cell, Grid
    from launch.local import RunSettings
    from launch.slurm_profile import SlurmProfile
    from launch.sweep_records import SweepOptions

EXIT_FAILED = 1  # some cell (or sweep) failed, or was lost with its worker


@dataclass(frozen=True)
class LaunchJob:
    """Everything a launcher is given: the selected cells and how to run them, as data."""

    grid: Grid
    cells: list[Cell]
    settings: RunSettings
    grid_arg: str  # the grid as the user named it, for the commands we print (`reprogbench status GRID`)
    workers: int = 1  # processes at once (local)
    wait: bool = False  # block until the submitted jobs end (Slurm)
    profile: Optional[SlurmProfile] = None  # Slurm launchers only
    sweep: Optional[SweepOptions] = None  # sweep launchers only


class Launcher(Protocol):
    name: ClassVar[str]
    command: ClassVar[str]  # `run` or `sweep`: the command that offers it
    option: ClassVar[str]  # its `--launcher` value there
    needs: ClassVar[str]  # what must be there before anything is written, e.g. a Slurm controller
    summary: ClassVar[str]
    takes_profile: ClassVar[bool]  # given a Slurm profile (`LaunchJob.profile`)

    def launch(self, job: LaunchJob) -> int: ...


LAUNCHERS: Registry[type[Launcher]] = Registry("launcher")


def launcher(cls: type[Launcher]) -> type[Launcher]:
    """`@launcher` registers a launcher class under its `name`."""
    return LAUNCHERS.register(cls.name, cls)


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def all_launchers() -> list[type[Launcher]]:
    _discover()
    return [LAUNCHERS.get(name) for name in LAUNCHERS.names()]


def options(command: str) -> list[str]:
    """The `--launcher` values `command` takes, its default first."""
    found = [entry.option for entry in all_launchers() if entry.command == command]
    return sorted(found, key=lambda option: (option != "local", option))


def for_command(command: str, option: str) -> Launcher:
    """The launcher behind `reprogbench COMMAND --launcher OPTION`, ready to launch."""
    for entry in all_launchers():
        if entry.command == command and entry.option == option:
            return entry()
    raise UnknownName(f"unknown launcher {option!r} for {command}; known: {', '.join(options(command))}")
