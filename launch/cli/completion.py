"""Shell completion (argcomplete) for commands, options, grid names and `--filter` values (the option groups of
`launch.cli.options` give GRID and --filter these completers).

Active only when the shell asks (argcomplete sets _ARGCOMPLETE), so an ordinary command imports nothing more.
Bash/zsh: `eval "$(register-python-argcomplete reprogbench)"` (in ~/.bashrc to keep it); fish:
`register-python-argcomplete --shell fish reprogbench | source`.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

FILTER_KEYS = ("method", "task", "backbone", "seed", "original", "id")


def grid_names(prefix: str, **_) -> list[str]:
    """The shipped grids' names and the YAML files beside the prefix (a folder typed so far is kept)."""
    from bench.grid.shipped import shipped_names

    shipped = shipped_names()
    folder = Path(prefix).parent if "/" in prefix else Path(".")
    try:
        files = sorted(str(p) + ("/" if p.is_dir() else "") for p in folder.iterdir()
                       if p.is_dir() or p.suffix in (".yaml", ".yml"))
    except OSError:
        files = []
    if folder == Path("."):
        files = [f[2:] if f.startswith("./") else f for f in files]
    return [name for name in shipped + files if name.startswith(prefix)]


def registry_names(key: str) -> list[str]:
    if key == "method":
        from bench.methods.base import METHODS

        return METHODS.names()
    if key == "task":
        from bench.data.registry import DATASETS

        return DATASETS.names()
    if key == "backbone":
        from bench.models import list_backbones

        return list_backbones()
    return []


def filter_values(prefix: str, **_) -> list[str]:
    """`--filter KEY=VALUE`: the keys, then the registered methods, tasks or backbones for the key typed."""
    key, equals, value = prefix.partition("=")
    if not equals:
        return [f"{k}=" for k in FILTER_KEYS if k.startswith(key)]
    return [f"{key}={name}" for name in registry_names(key) if name.startswith(value)]


def complete_if_asked(parser: argparse.ArgumentParser) -> None:
    """Answer the shell's completion request and exit, when this process is one."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    argcomplete.autocomplete(parser)
