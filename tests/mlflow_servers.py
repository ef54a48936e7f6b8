"""Real tracking servers for tests: `mlflow server` on loopback (sqlite or PostgreSQL backend), a throwaway
PostgreSQL cluster (Debian's `postgresql`, installed with apt-get when missing), and the REST calls that count
what a server holds."""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Optional

HOST = "127.0.0.1"  # every server a test starts listens on loopback only


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def get_json(url: str, body: Optional[dict] = None, timeout: float = 30) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def wait_for(url: str, proc: subprocess.Popen, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, f"the server exited with status {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer"
        time.sleep(0.5)


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT) -> None:
    """Signal the process group a test started (a server and its workers), then make sure it is gone."""
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


class MlflowServer:
    """`mlflow server` on 127.0.0.1:port over `backend`; `kill()` is the outage, `start()` again the restart."""

    def __init__(self, backend: str, workdir: Path, port: Optional[int] = None, workers: int = 1,
                 env: Optional[dict] = None):
        self.backend, self.workdir, self.port, self.workers = backend, Path(workdir), port or free_port(), workers
        # MLflow 3's server also starts a job runner (huey consumers, for GenAI jobs): not needed, and heavy
        self.env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
        self.proc: Optional[subprocess.Popen] = None
        self.log = self.workdir / f"mlflow-server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> MlflowServer:
        mlflow = Path(sys.executable).parent / "mlflow"
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(mlflow), "server", "--host", HOST, "--port", str(self.port), "--workers", str(self.workers),
                 "--backend-store-uri", self.backend, "--artifacts-destination", (self.workdir / "artifacts").as_uri()],
                cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=self.env)
        wait_for(f"{self.url}/health", self.proc)
        return self

    def kill(self) -> None:
        """The outage: SIGKILL, no goodbye to the clients."""
        if self.proc is not None:
            stop(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def runs(self, experiment: str) -> list[dict]:
        """Every run of `experiment` (all statuses), through the REST API."""
        return rest_runs(self.url, experiment)


def rest_runs(base: str, experiment: str) -> list[dict]:
    found = get_json(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name={experiment}")
    experiment_id = found["experiment"]["experiment_id"]
    runs, token = [], None
    while True:
        body = {"experiment_ids": [experiment_id], "max_results": 1000, "run_view_type": "ALL"}
        if token:
            body["page_token"] = token
        page = get_json(f"{base}/api/2.0/mlflow/runs/search", body)
        runs += page.get("runs", [])
        token = page.get("next_page_token")
        if not token:
            return runs


def experiments_named(base: str, name: str) -> list[dict]:
    page = get_json(f"{base}/api/2.0/mlflow/experiments/search", {"max_results": 1000, "view_type": "ALL"})
    return [e for e in page.get("experiments", []) if e["name"] == name]


def tags_of(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def metric_history(base: str, run_id: str, key: str) -> list[dict]:
    return get_json(f"{base}/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key={key}").get("metrics", [])


# --------------------------------------------------------------------------- PostgreSQL


def _postgres_bin() -> Optional[Path]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def ensure_postgres() -> Path:
    """The folder of PostgreSQL's server programs, installing Debian's `postgresql` when it is missing."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        apt = [] if os.geteuid() == 0 else ["sudo", "-n"]
        if shutil.which("apt-get") is None:
            raise RuntimeError("PostgreSQL is not installed and there is no apt-get to install it")
        subprocess.run([*apt, "apt-get", "update", "-qq"], check=True, capture_output=True, timeout=600)
        subprocess.run([*apt, "apt-get", "install", "-y", "-qq", "postgresql"], check=True, capture_output=True,
                       timeout=900, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        bin_dir = _postgres_bin()
        assert bin_dir is not None, "apt-get install postgresql did not provide initdb"
    return bin_dir


class PostgresCluster:
    """A throwaway cluster in a folder of its own, on 127.0.0.1:port only (and a socket in the folder), trust auth for
    loopback; run as the `postgres` user when the tests run as root (PostgreSQL refuses root)."""

    def __init__(self, max_connections: int = 200):
        self.bin = ensure_postgres()
        self.user = "postgres" if os.geteuid() == 0 else None
        # its own folder in /tmp: pytest's are private to the user running the tests, and the server's user
        # must reach its data folder
        self.folder = Path(tempfile.mkdtemp(prefix="reprogbench-postgres-"))
        self.port, self.max_connections = free_port(), max_connections
        self.data, self.socket_dir = self.folder / "data", self.folder / "socket"

    def _run(self, *command: str, **kwargs) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        return subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=300, **kwargs)

    def start(self) -> PostgresCluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self.user:
            shutil.chown(self.folder, self.user)
            shutil.chown(self.socket_dir, self.user)
        initdb = self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                           "-E", "UTF8", "--no-sync")
        assert initdb.returncode == 0, initdb.stderr
        options = (f"-c listen_addresses={HOST} -p {self.port} -k {self.socket_dir} "
                   f"-c max_connections={self.max_connections} -c fsync=off -c synchronous_commit=off")
        started = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "postgres.log"),
                            "-o", options, "-w", "-t", "120", "start")
        assert started.returncode == 0, started.stderr + started.stdout
        return self

    def create_database(self, name: str) -> str:
        made = self._run(str(self.bin / "createdb"), "-h", HOST, "-p", str(self.port), "-U", "postgres", name)
        assert made.returncode == 0, made.stderr
        return self.uri(name)

    def uri(self, database: str) -> str:
        # +psycopg2: SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3
        return f"postgresql+psycopg2://postgres@{HOST}:{self.port}/{database}"

    def connections(self) -> int:
        """Client connections open now (what max_connections bounds)."""
        out = self._run(str(self.bin / "psql"), "-h", HOST, "-p", str(self.port), "-U", "postgres", "-tAc",
                        "select count(*) from pg_stat_activity where backend_type = 'client backend'")
        return int(out.stdout.strip())

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)
