"""The one way tests call the `reprogbench` command as a user does: `python -m launch.cli` in a subprocess, from
the repository root, with this environment plus `env`. In-process calls use `launch.cli.main` directly."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cli_argv(*args) -> list[str]:
    return [sys.executable, "-m", "launch.cli", *map(str, args)]


def cli(*args, env: dict | None = None, timeout: int = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run `reprogbench ARGS` to the end; its output captured as text."""
    kwargs.setdefault("cwd", REPO)
    return subprocess.run(cli_argv(*args), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, **kwargs)


def cli_popen(*args, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """Start `reprogbench ARGS` (to signal, kill or read it while it runs); stdout and stderr piped as text."""
    kwargs.setdefault("cwd", REPO)
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(cli_argv(*args), text=True, env={**os.environ, **(env or {})}, **kwargs)
