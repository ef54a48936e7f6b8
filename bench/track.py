"""Where results go: each cell's local record (the source of truth) and its MLflow run (for the UI).

Layout: `results/<grid>/<cell_id>/` holds `result.json` (done or failed), `checkpoint.pt` (latest epoch; with
`checkpoint.pt.sha256` and the epoch before, `checkpoint.prev.pt`: `bench.checkpoint`),
`model.pt` (a pretrain cell's weights, which other cells load), `error.txt` (a failed cell's traceback) and
`mlflow_run_id` (so a resumed cell keeps logging into the same MLflow run).
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import torch

RESULT = "result.json"
CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
ERROR = "error.txt"
MLFLOW_RUN = "mlflow_run_id"

EXPERIMENT_KIND = "mlflow.experimentKind"
PARENT_RUN = "mlflow.parentRunId"  # the MLflow UI nests a run under the run this tag names
RUN_KIND = "reprogbench.run_kind"  # on runs that are not cells: grid_launch, report, sweep, sweep_trial


# --------------------------------------------------------------------------- local records


def cell_dir(results_root: Path, grid: str, cell_id: str) -> Path:
    return Path(results_root) / grid / cell_id


def _atomic_write(path: Path, write) -> None:
    """Write to a temporary file in the same folder, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    _atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, sort_keys=True).encode()))


def save_torch(path: Path, obj: Any) -> None:
    _atomic_write(path, lambda f: torch.save(obj, f))


def read_json(path: Path) -> Optional[dict]:
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # cannot happen with atomic writes; a hand-edited file counts as absent


def read_record(directory: Path) -> Optional[dict]:
    return read_json(Path(directory) / RESULT)


def cell_status(directory: Path) -> str:
    record = read_record(directory)
    return record["status"] if record else "pending"


# --------------------------------------------------------------------------- provenance


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the code that produced a result ("+dirty" if it had local changes), or "unknown"."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def flatten(spec: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"hparams": {"lr": 0.001}} -> {"hparams.lr": 0.001}; how a spec becomes MLflow params."""
    flat: dict[str, Any] = {}
    for key, value in spec.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


# --------------------------------------------------------------------------- MLflow


def default_tracking_uri(results_root: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(results_root).resolve() / 'mlflow.db'}"


def sqlite_path(uri: str) -> Optional[Path]:
    """The database file of a `sqlite:///...` tracking URI (None for any other store)."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def artifact_location(uri: str, experiment: str) -> Optional[str]:
    """Where a new experiment keeps its artifacts: beside a sqlite store (`mlartifacts/<experiment>`), so the
    results folder holds them; MLflow's own default is `./mlruns` of whatever folder the process ran in.
    None: the server decides."""
    db = sqlite_path(uri)
    return (db.resolve().parent / "mlartifacts" / experiment).as_uri() if db is not None else None


class Tracker:
    """Logs cells to MLflow through an explicit client (no global active run, safe across cells).

    Tracking is a mirror of the local records: if the server fails, the cell goes on, the record stays
    complete, and we say so once instead of failing the run.
    """

    _warned = False
    _lock = threading.Lock()

    def __init__(self, uri: str, experiment: str):
        from mlflow.tracking import MlflowClient  # mlflow is slow to import; only cells that log pay for it

        self.uri = uri
        self.experiment = experiment
        self.client = MlflowClient(tracking_uri=uri)
        self.experiment_id: Optional[str] = None

    def _safe(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any tracking failure must not fail the cell
            with Tracker._lock:
                if not Tracker._warned:
                    Tracker._warned = True
                    print(f"MLflow tracking at {self.uri} failed ({what}: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); cells go on, local records are "
                          "complete", file=sys.stderr)
            return None

    def ensure_experiment(self) -> Optional[str]:
        """Create the grid's experiment once, before cells fan out (concurrent creation races)."""
        def get_or_create():
            found = self.client.get_experiment_by_name(self.experiment)
            if found:
                return found.experiment_id
            # MLflow 3 tells GenAI experiments from model-training ones by this tag; ours are training runs
            return self.client.create_experiment(self.experiment, tags={EXPERIMENT_KIND: "custom_model_development"},
                                                 artifact_location=artifact_location(self.uri, self.experiment))

        self.experiment_id = self._safe("create experiment", get_or_create)
        return self.experiment_id

    def start_parent(self, name: str, tags: Mapping[str, str], params: Optional[Mapping[str, Any]] = None,
                     run_file: Optional[Path] = None) -> Optional[str]:
        """A run that groups others (a grid launch, a sweep): children carry its id in `PARENT_RUN`.

        With `run_file`, the run id is kept there and a rerun (a resumed sweep) continues the same parent.
        """
        if self.experiment_id is None and self.ensure_experiment() is None:
            return None
        if run_file is not None and Path(run_file).is_file():
            run_id = Path(run_file).read_text().strip()
            self._safe("resume run", self.client.update_run, run_id, status="RUNNING")
            return run_id
        run = self._safe("start run", self.client.create_run, self.experiment_id, run_name=name, tags=dict(tags))
        if run is None:
            return None
        self.log_params(run.info.run_id, params or {})
        if run_file is not None:
            Path(run_file).parent.mkdir(parents=True, exist_ok=True)
            Path(run_file).write_text(run.info.run_id)
        return run.info.run_id

    def start(self, cell, directory: Path, tags: Mapping[str, str]) -> Optional[str]:
        if self.experiment_id is None and self.ensure_experiment() is None:
            return None
        run_file = Path(directory) / MLFLOW_RUN
        if run_file.is_file():  # a resumed cell continues its run instead of opening a duplicate
            run_id = run_file.read_text().strip()
            self._safe("resume run", self.client.update_run, run_id, status="RUNNING")
            return run_id
        run = self._safe("start run", self.client.create_run, self.experiment_id, run_name=cell.name,
                         tags=dict(tags))
        if run is None:
            return None
        run_id = run.info.run_id
        params = {k: str(v) for k, v in flatten(cell.spec).items()}
        from mlflow.entities import Param

        self._safe("log params", self.client.log_batch, run_id, params=[Param(k, v) for k, v in params.items()])
        Path(directory).mkdir(parents=True, exist_ok=True)
        run_file.write_text(run_id)
        return run_id

    def log_params(self, run_id: Optional[str], params: Mapping[str, Any]) -> None:
        if run_id is None or not params:
            return
        from mlflow.entities import Param

        self._safe("log params", self.client.log_batch, run_id, params=[Param(k, str(v)) for k, v in params.items()])

    def log_artifacts(self, run_id: Optional[str], folder: Path, artifact_path: Optional[str] = None) -> None:
        if run_id is not None:
            self._safe("log artifacts", self.client.log_artifacts, run_id, str(folder), artifact_path)

    def log_metrics(self, run_id: Optional[str], metrics: Mapping[str, float], step: Optional[int] = None) -> None:
        if run_id is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items() if v is not None]
        self._safe("log metrics", self.client.log_batch, run_id, metrics=batch)

    def set_tags(self, run_id: Optional[str], tags: Mapping[str, str]) -> None:
        if run_id is None or not tags:
            return
        from mlflow.entities import RunTag

        self._safe("set tags", self.client.log_batch, run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def finish(self, run_id: Optional[str], status: str, tags: Optional[Mapping[str, str]] = None) -> None:
        if run_id is None:
            return
        self.set_tags(run_id, tags or {})
        # interrupted: KILLED, neither finished nor failed; the rerun that resumes the cell sets it RUNNING again
        mlflow_status = {"done": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED")
        self._safe("end run", self.client.set_terminated, run_id, mlflow_status)
