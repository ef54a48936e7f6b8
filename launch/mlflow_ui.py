"""`reprogbench ui GRID`: the MLflow UI on this machine's loopback, on the store a grid's runs were logged to,
with the URL of the grid's runs table (MLflow 3 otherwise opens on its GenAI pages)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

HOST = "127.0.0.1"


class UiError(RuntimeError):
    """The UI cannot start (no store, a busy port, no mlflow executable); one line with the fix."""


def runs_url(base: str, experiment_id: Optional[str]) -> str:
    """The experiment's runs as a results table: model-training mode (MLflow 3 otherwise opens on its GenAI
    pages), only runs with a test accuracy (the cells; a launch's or a report's run has none, so the cells are
    not folded under their launch), best first."""
    if not experiment_id:
        return f"{base.rstrip('/')}/#/experiments"
    from bench.track_names import RESULTS_VIEW_KEY

    # the filter, order and columns are in the experiment's shared view (bench.track.publish_results_view): the UI
    # ignores a shared view whose URL also carries a filter or an order
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning&viewStateShareKey=" \
        f"{RESULTS_VIEW_KEY}"


def mlflow_hint(uri: str, experiment: str, experiment_id: Optional[str]) -> str:
    """The command that shows these runs, and the page that lists them (MLflow 3 opens on GenAI pages)."""
    from bench.redact import redact_uri

    uri = redact_uri(uri)
    if uri.startswith("sqlite"):
        # the mlflow beside this Python: on PATH only in an activated venv
        mlflow = Path(sys.executable).parent / "mlflow"
        return (f"MLflow: {mlflow} ui --backend-store-uri {uri}   then open "
                f"{runs_url('http://127.0.0.1:5000', experiment_id)} (experiment {experiment!r}; "
                "or `reprogbench ui GRID`)")
    return f"MLflow: open {runs_url(uri, experiment_id)} (experiment {experiment!r})"


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _answers(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def mlflow_executable() -> str:
    beside = Path(sys.executable).parent / "mlflow"  # the venv's, when reprogbench runs from one
    found = str(beside) if beside.is_file() else shutil.which("mlflow")
    if not found:
        raise UiError("the mlflow command is not installed beside this Python; `make install` installs it")
    return found


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(uri: str, port: int, experiment_id: Optional[str], echo=print, startup_s: float = 180.0,
          host: str = HOST) -> int:
    """Start `mlflow ui` on host:port (loopback unless told otherwise) for `uri`, print the runs URL once it
    answers, and wait for it to end (Ctrl-C stops it). -> its exit status."""
    if not port_is_free(port, host):
        raise UiError(f"port {port} on {host} is in use (another MLflow UI?); pass --port N with a free port")
    command = [mlflow_executable(), "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    # MLflow 3 also starts a job runner (GenAI jobs) with the UI: a dozen processes a results browser never uses
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    proc = subprocess.Popen(command, stdout=sys.stderr, env=env)  # stdout keeps only the URL, for scripts to read
    signal.signal(signal.SIGTERM, _interrupt)  # stopped by a job manager: still stop the server
    try:
        deadline = time.monotonic() + startup_s
        local = HOST if host in ("0.0.0.0", "::", "") else host  # a wildcard listens on loopback too
        while not _answers(port, local):
            if proc.poll() is not None:
                raise UiError(f"mlflow ui exited with status {proc.returncode} before answering on port {port}; "
                              "its messages are above")
            if time.monotonic() > deadline:
                raise UiError(f"mlflow ui did not answer on {host}:{port} within {startup_s:.0f}s")
            time.sleep(0.5)
        echo(f"MLflow UI: {runs_url(f'http://{local}:{port}', experiment_id)}   (Ctrl-C stops it)")
        sys.stdout.flush()
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
