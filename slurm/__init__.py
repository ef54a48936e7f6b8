"""The Slurm files that ship with reprogbench: profiles, sbatch templates, the Ray cluster script, the local test
cluster. Package data, so an installed (non-editable) reprogbench finds them too; `shipped()` is the one way in."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def shipped(*parts: str) -> Path:
    """A shipped file or folder as a path (sbatch and bash need one: reprogbench is never installed zipped)."""
    return Path(str(files(__name__).joinpath(*parts)))
