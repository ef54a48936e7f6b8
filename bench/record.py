"""A cell's result record: its typed model and the one reader and writer of `result.json`.

The trainer writes a done record, a launcher a failed one, `sync` marks it synced, and analysis reads it back
(or rebuilds one from the cell's MLflow run, into the same model). Every other module reads a record through
these attributes, never by string key.

On disk the JSON keeps the shape it had before this model existed, so records already written still load:
fields that are absent read as None (a failed record holds only who the cell is and its error), and each history
row keeps a joint task's per-part validation accuracy under `val_acc.<part>` keys.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, ValidationError, model_serializer, model_validator

from bench.files import RESULT, write_json

Status = Literal["done", "failed"]
DONE_PARTS = ("metrics", "timing", "throughput", "parameters", "environment")  # what every done record holds
PHASES = ("setup_s", "features_s", "compile_s", "train_s", "eval_s")  # the timed phases of a cell, in order
COMPUTE_FIELDS = ("cpu_s", "usable_cpus", "load_start", "load_end", "cpu_pressure")  # the `compute` part (Compute)


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class HistoryRow(_Part):
    """One epoch: the running train figures, validation, and the cost so far (elapsed_s, energy_j)."""

    PART_PREFIX: ClassVar[str] = "val_acc."
    epoch: int
    train_loss: Optional[float] = None
    train_acc: Optional[float] = None
    val_loss: Optional[float] = None
    val_acc: Optional[float] = None
    elapsed_s: Optional[float] = None
    energy_j: Optional[float] = None
    val_acc_by_part: dict[str, Optional[float]] = {}  # a joint task's parts (on disk: `val_acc.<part>` keys)

    @classmethod
    def metric_names(cls) -> tuple[str, ...]:
        """The per-epoch figures a cell's MLflow run holds as metric histories, stepped by epoch."""
        return ("train_loss", "train_acc", "val_loss", "val_acc", "elapsed_s", "energy_j")

    @model_validator(mode="before")
    @classmethod
    def _gather_parts(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k.startswith(cls.PART_PREFIX) for k in data):
            parts = {k[len(cls.PART_PREFIX):]: v for k, v in data.items() if k.startswith(cls.PART_PREFIX)}
            data = {k: v for k, v in data.items() if not k.startswith(cls.PART_PREFIX)}
            data["val_acc_by_part"] = {**data.get("val_acc_by_part", {}), **parts}
        return data

    @model_serializer(mode="wrap")
    def _flatten_parts(self, handler):
        data = handler(self)
        parts = data.pop("val_acc_by_part", None) or {}
        return {**data, **{f"{self.PART_PREFIX}{part}": acc for part, acc in parts.items()}}

    def metrics(self) -> dict[str, float]:
        """The row as MLflow metrics (no epoch: that is the step), parts included."""
        return {k: v for k, v in self.model_dump().items() if k != "epoch" and v is not None}


class PartMetrics(_Part):
    test_acc: Optional[float] = None
    val_acc: Optional[float] = None  # at the selected epoch


class Metrics(_Part):
    """The selected weights' figures: test read once, validation (what selected them), and train: those weights
    evaluated once on the train split (eval mode), as the thesis reports train accuracy."""

    test_acc: Optional[float] = None  # None: the test split was not read (a sweep's trial)
    test_loss: Optional[float] = None
    val_acc: Optional[float] = None
    # records written before train_acc_running existed hold the running mean here (their train_acc_running: None)
    train_acc: Optional[float] = None
    # the running mean over the selected epoch's batches while the weights still moved (history's train_acc)
    train_acc_running: Optional[float] = None
    best_epoch: Optional[int] = None
    per_task: dict[str, PartMetrics] = {}  # a joint task: each part's accuracy
    queries: Optional[int] = None  # a gradient-free method: images sent through the black box


class Timing(_Part):
    """Wall-clock by phase; a packed cell's is its 1/K share of the pack's."""

    setup_s: Optional[float] = None
    features_s: Optional[float] = None
    compile_s: Optional[float] = None
    train_s: Optional[float] = None
    eval_s: Optional[float] = None
    total_s: Optional[float] = None


class Compute(_Part):
    """The process's CPU time over the run (summed over ranks and reaped workers; a packed cell's 1/K share),
    the CPUs it could use and the machine's load: `bench.cpu_usage`. Older records have none."""

    cpu_s: Optional[float] = None
    usable_cpus: Optional[int] = None
    load_start: Optional[float] = None  # 1-minute load average
    load_end: Optional[float] = None
    cpu_pressure: Optional[float] = None  # share of the run some task waited for a CPU (Linux PSI)


class PackInfo(_Part):
    size: int = 1
    cells: list[str] = []


class Throughput(_Part):
    train_images: Optional[int] = None
    images_per_s: Optional[float] = None


class Energy(_Part):
    """Over the timed phases, summed over ranks (a packed cell's is its 1/K share). `bench.energy` describes it."""

    model_config = ConfigDict(extra="allow")  # a meter may describe itself further (e.g. the watts it assumed)
    joules: Optional[float] = None
    source: str = "unknown"  # nvml | rapl | estimate ("a+b" if a resume changed it)
    estimate: bool = True
    basis: Optional[str] = None
    ranks: Optional[int] = None


class Parameters(_Part):
    trainable: Optional[int] = None
    total: Optional[int] = None


class Memory(_Part):
    model_config = ConfigDict(extra="allow")
    process_peak_rss_mb: Optional[float] = None  # the process's high-water mark: an upper bound when cells share one
    gpu_peak_allocated_mb: Optional[float] = None  # torch's peak from the pack's set-up to its record: the pack's own


class Environment(_Part):
    device: Optional[str] = None
    device_type: Optional[str] = None
    world_size: Optional[int] = None
    mixed_precision: Optional[str] = None
    data_path: Optional[str] = None  # "device" (images on the device whole) or "stream" (bench.train.placement)
    batch_norm: Optional[str] = None  # trainable BatchNorm: "synced" over DDP ranks, "one process"; None: none trains
    torch_threads: Optional[int] = None
    python: Optional[str] = None
    torch: Optional[str] = None
    torchvision: Optional[str] = None
    accelerate: Optional[str] = None
    hostname: Optional[str] = None
    git_commit: Optional[str] = None


class Tracking(_Part):
    """The cell's MLflow run as the record knows it: `synced` only once its last MLflow call went through."""

    uri: Optional[str] = None
    experiment: Optional[str] = None
    run_id: Optional[str] = None
    synced: bool = False
    error: Optional[str] = None  # why tracking went offline


class CellRecord(_Part):
    """What one cell produced. A done record has every part; a failed one names the cell and its error (its other
    parts are None)."""

    cell_id: str
    grid: Optional[str] = None
    name: str = ""
    status: Status
    error: Optional[str] = None  # a failed cell: one line (its traceback is in error.txt)
    spec: dict[str, Any] = {}
    depends_on: list[str] = []
    metrics: Optional[Metrics] = None
    history: list[HistoryRow] = []
    timing: Optional[Timing] = None
    compute: Optional[Compute] = None
    pack: Optional[PackInfo] = None
    throughput: Optional[Throughput] = None
    energy: Optional[Energy] = None
    parameters: Optional[Parameters] = None
    memory: Optional[Memory] = None
    split: dict[str, Any] = {}  # how the task was split (sizes, fingerprint): `bench.data`
    environment: Optional[Environment] = None
    resumed_from_epoch: Optional[int] = None
    checkpoint_problems: list[str] = []  # corrupt checkpoints skipped on resume, one line each
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    mlflow_run_id: Optional[str] = None
    mlflow_parent_run_id: Optional[str] = None  # a record rebuilt from MLflow: the launch or sweep it is nested in
    tracking: Optional[Tracking] = None

    @model_validator(mode="after")
    def _done_has_its_parts(self):
        # readers (report, sync, the tables) use a done record's parts without checking: one without them is no
        # done record but a hand-written or truncated one, and must not count the cell as finished
        missing = [part for part in DONE_PARTS if getattr(self, part) is None] if self.done else []
        if missing:
            raise ValueError(f"a done record without {', '.join(missing)}")
        return self

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def best_row(self) -> Optional[HistoryRow]:
        """The history row of the selected epoch."""
        epoch = self.metrics.best_epoch if self.metrics else None
        return self.history[epoch - 1] if epoch and epoch <= len(self.history) else None

    def to_json(self) -> dict[str, Any]:
        """The record as `result.json` holds it: the fields that were given (a failed record names its cell and
        error only), so a record read from disk and written back keeps its shape."""
        return self.model_dump(mode="json", exclude_unset=True)

    def final_metrics(self) -> dict[str, float]:
        """A done cell's end-of-run MLflow metrics (logged at step = epochs; `sync` uploads the same)."""
        metrics = {"test_acc": self.metrics.test_acc, "test_loss": self.metrics.test_loss,  # None: test not read
                   "best_val_acc": self.metrics.val_acc,
                   **{k: getattr(self.timing, k) for k in (*PHASES, "total_s")},
                   "trainable_params": self.parameters.trainable,
                   "images_per_s": self.throughput.images_per_s or 0.0,
                   "train_images": self.throughput.train_images,
                   "energy_j": self.energy.joules if self.energy else None}
        if self.compute:  # the CPU time and load the report's compute basis and overload flag come from
            metrics.update({k: v for k, v in self.compute.model_dump().items() if v is not None})
        if self.metrics.train_acc_running is not None:  # the selected weights on the train split (older records'
            metrics["train_acc"] = self.metrics.train_acc  # train_acc is the running mean: history has it)
        if self.metrics.queries is not None:  # a gradient-free method's black-box queries
            metrics["queries"] = self.metrics.queries
        for part, figures in self.metrics.per_task.items():  # a joint task's accuracy per part
            if figures.test_acc is not None:
                metrics[f"test_acc.{part}"] = figures.test_acc
        return metrics


def failed_record(cell, error: str) -> CellRecord:
    """The record of a cell that failed (`cell`: a `bench.grid` Cell): who it is and one line saying why."""
    return CellRecord(cell_id=cell.cell_id, grid=cell.grid, name=cell.name, status="failed", error=error,
                      spec=cell.spec, depends_on=list(cell.depends_on))


def parse_record(data: Any) -> Optional[CellRecord]:
    """A record from its JSON form; None for anything that is not one (a hand-edited or foreign file)."""
    try:
        return validate_record(data)
    except RecordError:
        return None


class RecordError(ValueError):
    """A `result.json` that is not a cell record; the message says, in a few words, what is wrong with it."""


def validate_record(data: Any) -> CellRecord:
    """The record in `data` (parsed JSON), or RecordError saying why it is not one."""
    if not isinstance(data, dict):
        raise RecordError(f"a JSON {type(data).__name__}, not a mapping")
    try:
        return CellRecord.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise RecordError(f"{where + ': ' if where else ''}{first['msg']}") from None


_REPORTED: set[Path] = set()  # each bad record is reported once per process, however often it is read


def read_record(directory: Path) -> Optional[CellRecord]:
    """The cell's record in `directory`, or None when it has none (not run yet) or its file is not a record: that
    one is reported in one line on stderr, and the cell counts as not finished (a run resumes it from its
    checkpoint and writes a record over the bad one)."""
    path = Path(directory) / RESULT
    if path.is_symlink():  # the suite never writes a link: one here was planted, and is not read through
        return _bad_record(path, "a symbolic link, not a file the suite wrote")
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return _bad_record(path, f"cannot read it: {getattr(exc, 'strerror', None) or exc}")
    try:
        return validate_record(json.loads(text))
    except json.JSONDecodeError as exc:
        return _bad_record(path, f"not JSON ({exc.msg} at line {exc.lineno})")
    except RecordError as exc:
        return _bad_record(path, str(exc))


def _bad_record(path: Path, why: str) -> None:
    if path not in _REPORTED:
        _REPORTED.add(path)
        # a key of the file's own may hold newlines: the report stays one line
        why = " ".join(why.replace("Value error, ", "").split())[:200]
        print(f"reprogbench: warning: {path}: not a cell record ({why}); the cell counts as not finished, so `run` "
              "trains it again from its checkpoint and replaces the file (or delete the file)",
              file=sys.stderr, flush=True)
    return None


def write_record(directory: Path, record: CellRecord) -> None:
    """Write (atomically) the cell's `result.json`."""
    write_json(Path(directory) / RESULT, record.to_json())


def cell_status(directory: Path) -> str:
    """done, failed, or pending (no record)."""
    record = read_record(directory)
    return record.status if record else "pending"
