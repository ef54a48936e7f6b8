"""A cell's MLflow run (for the UI): a mirror of its local record (`bench.record`), the source of truth.

The run's id is kept in the cell's folder (`bench.files.MLFLOW_RUN`), so a resumed cell keeps logging into the same
run; a run that groups others (a grid launch, a sweep) is a parent its children name in `PARENT_RUN`.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from bench.files import MLFLOW_RUN, own_file, write_text
from bench.record import CellRecord, Tracking, write_record
from bench.track_names import run_name
from bench.track_runs import RUN_KIND, cell_runs

EXPERIMENT_KIND = "mlflow.experimentKind"
PARENT_RUN = "mlflow.parentRunId"  # the MLflow UI nests a run under the run this tag names
__all__ = ["RUN_KIND", "PARENT_RUN", "EXPERIMENT_KIND", "Tracker", "TrackingUnavailable"]


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


# MLflow's HTTP client retries a failed request 7 times with exponential backoff (minutes) before it gives up;
# a cell must not stall that long on a server that is down. Used unless the user set them.
# MLflow also prints two "View run" lines per finished run to stdout (and reads the run again to do it).
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "20", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
SQLITE_BUSY_S = 120.0  # how long a write to a sqlite store waits out other writers before tracking goes offline


class TrackingUnavailable(RuntimeError):
    """The tracking store failed (raised only by a strict Tracker, e.g. `reprogbench sync`)."""


_announced: set[str] = set()


def announce_offline(uri: str, grid: str, reason: str) -> None:
    """Say once per process that tracking went offline, how the records stand, and how to catch up."""
    with Tracker._lock:
        if uri in _announced:
            return
        _announced.add(uri)
    from tqdm import tqdm  # writes above a progress bar instead of through it

    from bench.redact import redact_text

    tqdm.write(redact_text(f"tracking offline: MLflow at {uri} failed ({reason}); cells go on and their local "
                           f"records are complete; run `reprogbench sync {grid}` (same --results) when it is back"),
               file=sys.stderr)


class _LazyClient:
    """An MlflowClient made on its first call: opening a sqlite store creates its tables, so that has to happen
    under the store's lock and inside the Tracker's error handling, like every other call."""

    def __init__(self, uri: str):
        self.uri, self._client = uri, None

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            if self._client is None:
                from mlflow.tracking import MlflowClient  # slow to import; only cells that log pay for it

                self._client = MlflowClient(tracking_uri=self.uri)
            return getattr(self._client, name)(*args, **kwargs)

        return call


def _is_busy(exc: BaseException) -> bool:
    return "database is locked" in str(exc) or "database table is locked" in str(exc)


def half_created(exc: BaseException, uri: str) -> Optional[str]:
    """What to do with a sqlite store whose first migration was cut short (a full disk while MLflow created its
    tables): every later open fails on alembic's leftover `_alembic_tmp_*` table, whatever space is freed."""
    db = sqlite_path(uri)
    if db is None or "_alembic_tmp_" not in str(exc):
        return None
    return (f"the store {db} was left half-created (its tables' migration was cut short, e.g. by a full disk); "
            f"move it aside or delete it (and {db.name}.lock), then `reprogbench sync` uploads the local records")


class Tracker:
    """Logs cells to MLflow through an explicit client (no global active run, safe across cells).

    Tracking is a mirror of the local records. If the store fails, this process stops calling it (a server that
    is down costs one short wait, not one per epoch), cells go on with complete records marked unsynced, and the
    run says so once (`announce_offline`); `reprogbench sync` uploads what is missing later.

    A sqlite store is written by one process at a time (a lock file beside it): concurrent first opens race on
    creating its tables, and a write waits out the others instead of failing with "database is locked".
    With `strict`, a failure raises `TrackingUnavailable` instead (for `sync`, which must not skip silently).
    """

    _lock = threading.Lock()
    _offline: dict[str, str] = {}  # uri -> why, for this process: once failed, never called again
    announce = True  # pool workers set it False: the launching process says it once for all of them

    def __init__(self, uri: str, experiment: str, strict: bool = False):
        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        self.uri = uri
        self.experiment = experiment
        self.strict = strict
        self.client = _LazyClient(uri)
        self.experiment_id: Optional[str] = None
        db = sqlite_path(uri)
        self._file_lock = None
        if db is not None:
            from filelock import FileLock

            db.parent.mkdir(parents=True, exist_ok=True)
            self._file_lock = FileLock(str(db) + ".lock", timeout=SQLITE_BUSY_S)

    @property
    def offline(self) -> Optional[str]:
        """Why tracking is offline in this process (None: it is not)."""
        return Tracker._offline.get(self.uri)

    @classmethod
    def offline_reason(cls, uri: Optional[str]) -> Optional[str]:
        return cls._offline.get(uri or "")

    def _call(self, fn, *args, **kwargs):
        if self._file_lock is None:
            return fn(*args, **kwargs)
        with self._file_lock:
            return fn(*args, **kwargs)

    def _safe(self, what: str, fn, *args, **kwargs):
        if self.offline and not self.strict:
            return None
        deadline, wait = time.monotonic() + SQLITE_BUSY_S, 0.05
        while True:
            try:
                return self._call(fn, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - any tracking failure must not fail the cell
                if _is_busy(exc) and time.monotonic() < deadline:  # another writer outside our lock (a server)
                    time.sleep(wait)
                    wait = min(2 * wait, 2.0)
                    continue
                from bench.redact import redact_text

                first = str(exc).splitlines()[0] if str(exc) else ""
                first = first if len(first) <= 160 else first[:157] + "..."
                reason = half_created(exc, self.uri) or redact_text(f"{what}: {type(exc).__name__}: {first}")
                if self.strict:
                    raise TrackingUnavailable(f"MLflow at {redact_text(self.uri)} failed ({reason})") from None
                Tracker._offline.setdefault(self.uri, reason)
                if Tracker.announce:
                    announce_offline(self.uri, self.experiment, reason)
                return None

    def call(self, what: str, fn, *args, **kwargs):
        """`fn(*args, **kwargs)` (a call of `self.client`) as every Tracker call runs: under the store's lock,
        waiting out a busy sqlite store; on failure None and offline (strict: TrackingUnavailable)."""
        return self._safe(what, fn, *args, **kwargs)

    def sync_state(self, run_id: Optional[str]) -> Tracking:
        """What a record says about its MLflow run: `synced` is true only once everything was logged."""
        from bench.redact import redact_uri

        return Tracking(uri=redact_uri(self.uri), experiment=self.experiment, run_id=run_id,
                        synced=bool(run_id) and not self.offline, error=self.offline)

    def mark_synced(self, directory: Path, record: CellRecord, run_id: Optional[str]) -> None:
        """After a cell's last MLflow call: upload what its run still lacks (an epoch a kill lost before it was
        logged), read the run back, and rewrite the record as synced only if MLflow holds every point it has."""
        state = self.sync_state(run_id).model_copy(update={"synced": self.complete_metrics(run_id, record)})
        if state != record.tracking:
            record.tracking = state
            write_record(directory, record)

    def complete_metrics(self, run_id: Optional[str], record: CellRecord) -> bool:
        """Log the metric points of `record` the run lacks; -> whether MLflow now holds them all (compared)."""
        from bench.track_runs import missing_metrics

        if run_id is None or self.offline:
            return False
        missing = missing_metrics(self, run_id, record)
        for start in range(0, len(missing or []), 500):  # MLflow takes 1000 per batch
            self._safe("log metrics", self.client.log_batch, run_id, metrics=missing[start:start + 500])
        return missing is not None and (not missing or missing_metrics(self, run_id, record) == [])

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
        if self.experiment_id is not None:  # on an experiment made by older code too: the printed URL opens it
            self._safe("tag experiment", publish_results_view, self.client, self.experiment_id)
        return self.experiment_id

    def start_parent(self, name: str, tags: Mapping[str, str], params: Optional[Mapping[str, Any]] = None,
                     run_file: Optional[Path] = None) -> Optional[str]:
        """A run that groups others (a grid launch, a sweep): children carry its id in `PARENT_RUN`.

        With `run_file`, the run id is kept there and a rerun (a resumed sweep) continues the same parent.
        """
        if self.experiment_id is None and self.ensure_experiment() is None:
            return None
        if run_file is not None and own_file(Path(run_file)):
            run_id = Path(run_file).read_text().strip()
            self._safe("resume run", self.client.update_run, run_id, status="RUNNING")
            return run_id
        run = self._safe("start run", self.client.create_run, self.experiment_id, run_name=name, tags=dict(tags))
        if run is None:
            return None
        self.log_params(run.info.run_id, params or {})
        if run_file is not None:
            write_text(Path(run_file), run.info.run_id)  # atomic: a link planted at the name is replaced
        return run.info.run_id

    def start(self, cell, directory: Path, tags: Mapping[str, str]) -> Optional[str]:
        """The cell's run: the one its folder names (a resumed cell), else the one tagged with its cell_id (a kill
        came between creating it and writing its id), else a new one, tagged with cell_id as it is created."""
        if self.experiment_id is None and self.ensure_experiment() is None:
            return None
        run_file = Path(directory) / MLFLOW_RUN
        if own_file(run_file):  # a resumed cell continues its run instead of opening a duplicate
            run_id = run_file.read_text().strip()
            self._safe("resume run", self.client.update_run, run_id, status="RUNNING")
            return run_id
        # a sweep's trial is not the grid's cell of the same cell_id: it always gets a run of its own
        found = [] if RUN_KIND in tags else cell_runs(self, self.experiment_id, cell.cell_id)
        if found is None:
            return None
        if found:
            run_id = found[0].info.run_id
            self._safe("resume run", self.client.update_run, run_id, status="RUNNING")
            have = found[0].data.params
            self.log_params(run_id, {k: v for k, v in flatten(cell.spec).items() if k not in have})
        else:
            run = self._safe("start run", self.client.create_run, self.experiment_id, run_name=run_name(cell),
                             tags={**tags, "cell_id": cell.cell_id})
            if run is None:
                return None
            run_id = run.info.run_id
            self.log_params(run_id, flatten(cell.spec))
        write_text(run_file, run_id)
        return run_id

    def log_params(self, run_id: Optional[str], params: Mapping[str, Any]) -> None:
        if run_id is None or not params:
            return
        from mlflow.entities import Param

        from bench.redact import redact_text

        self._safe("log params", self.client.log_batch, run_id,
                   params=[Param(k, redact_text(str(v))) for k, v in params.items()])

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


def publish_results_view(client, experiment_id: str) -> None:
    """Keep the experiment's results page (`bench.track_names.results_view`) as the suite defines it now."""
    from bench.track_names import RESULTS_VIEW_TAG, results_view

    view = results_view()
    if client.get_experiment(experiment_id).tags.get(RESULTS_VIEW_TAG) != view:
        client.set_experiment_tag(experiment_id, RESULTS_VIEW_TAG, view)
