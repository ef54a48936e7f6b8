"""Slurm profiles: the cluster settings of `reprogbench run --launcher slurm`, from a YAML file and flags.

A profile is checked completely before anything is submitted: an unknown key, an impossible time limit or a
negative count is one error line naming the key, and nothing reaches the queue.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from bench.grid import GridError
from bench.grid import one_line as _one_line

PROFILES_DIR = Path(__file__).resolve().parent.parent / "slurm" / "profiles"
MAX_MINUTES = 365 * 24 * 60  # a year: anything longer is a typo, not a job

def minutes(value: int | str) -> int:
    """Slurm's time formats (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S) or an int of minutes -> whole minutes."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a time limit (e.g. 90, 1:30:00, 2-00:00:00)")
    text = str(value).strip()
    days, dash, clock = text.partition("-") if "-" in text else ("0", "", text)
    fields = clock.split(":")
    if not days.isdigit() or not all(f.isdigit() for f in fields) or not 1 <= len(fields) <= 3:
        raise ValueError(f"{value!r} is not a Slurm time (e.g. 90, 1:30:00, 2-00:00:00)")
    nums = [int(f) for f in fields]
    if dash:  # D-H[:M[:S]]
        h, m, s = (nums + [0, 0])[:3]
    else:  # M, M:S or H:M:S
        h, m, s = {1: (0, nums[0], 0), 2: (0, *nums), 3: tuple(nums)}[len(nums)]
    bounded_minutes = bool(dash) or len(nums) == 3  # a lone M or M:S may exceed 59 minutes
    if s >= 60 or (bounded_minutes and m >= 60):
        raise ValueError(f"{value!r}: minutes and seconds must be below 60")
    total = int(days) * 1440 + h * 60 + m + (s > 0)
    if not 1 <= total <= MAX_MINUTES:
        raise ValueError(f"{value!r}: a time limit must be between 1 minute and a year")
    return total


class Resources(BaseModel):
    """What one job asks for; a method may override the profile's (e.g. pretrain cells on more GPUs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nodes: Optional[StrictInt] = Field(default=None, ge=1)
    gpus_per_node: Optional[StrictInt] = Field(default=None, ge=0)
    tasks_per_node: Optional[StrictInt] = Field(default=None, ge=1)  # default: one task per GPU, else 1
    cpus_per_task: Optional[StrictInt] = Field(default=None, ge=1)
    mem_gb: Optional[float] = Field(default=None, gt=0)  # per node
    time: Optional[int | str] = None

    @field_validator("time")
    @classmethod
    def _time(cls, value):
        return None if value is None else minutes(value)


class SlurmProfile(Resources):
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    constraint: Optional[str] = None
    cpus_per_gpu: Optional[StrictInt] = Field(default=None, ge=1)
    mem_per_gpu_gb: Optional[float] = Field(default=None, gt=0)
    array_parallelism: StrictInt = Field(default=64, ge=1)  # array tasks running at once
    setup: list[str] = []  # lines run before each job, e.g. `module load cuda/12.4`, `source venv/bin/activate`
    sbatch: dict[str, Any] = {}  # any other sbatch option, e.g. {reservation: x, exclude: node[1-2]}
    signal_delay_s: StrictInt = Field(default=120, ge=10)  # USR2 this long before the time limit
    max_requeues: StrictInt = Field(default=3, ge=0)  # after a time-out; preemptions always requeue
    methods: dict[str, Resources] = {}  # per-method overrides

    def for_method(self, method: str) -> dict[str, Any]:
        """The resources of a job running `method` cells, every default resolved."""
        base = {key: getattr(self, key) for key in Resources.model_fields}
        override = self.methods.get(method)
        if override is not None:
            base.update({k: v for k, v in override.model_dump().items() if v is not None})
        base["nodes"] = base["nodes"] or 1
        base["gpus_per_node"] = base["gpus_per_node"] or 0
        base["tasks_per_node"] = base["tasks_per_node"] or max(1, base["gpus_per_node"])
        base["time"] = base["time"] or 60
        if base["cpus_per_task"] is None and self.cpus_per_gpu and base["gpus_per_node"]:
            base["cpus_per_task"] = self.cpus_per_gpu * base["gpus_per_node"] // base["tasks_per_node"]
        if base["mem_gb"] is None and self.mem_per_gpu_gb and base["gpus_per_node"]:
            base["mem_gb"] = self.mem_per_gpu_gb * base["gpus_per_node"]
        return base


def load_profile(path: Optional[str | Path], overrides: dict[str, Any]) -> SlurmProfile:
    """The profile at `path` (a file, or a name under slurm/profiles/), with flag values on top."""
    raw: dict[str, Any] = {}
    where = "slurm profile"
    if path is not None:
        file = Path(path)
        if not file.is_file() and (PROFILES_DIR / f"{path}.yaml").is_file():
            file = PROFILES_DIR / f"{path}.yaml"
        if not file.is_file():
            known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
            raise GridError(f"{path}: no such profile file, and not a shipped profile ({known})")
        where = str(file)
        try:
            raw = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise GridError(f"{file}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
        if not isinstance(raw, dict):
            raise GridError(f"{file}: a profile is a YAML mapping of sbatch settings")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return SlurmProfile.model_validate(raw)
    except ValidationError as exc:
        raise GridError(f"{where}: {_one_line(exc, SlurmProfile, '')}") from None
