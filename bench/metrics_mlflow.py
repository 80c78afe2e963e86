"""The peer: a real MLflow tracking server (a child process) fed with MlflowClient's log_metric / log_batch.

The server stores into its own database on the same PostgreSQL as ours (`postgresql+psycopg`);
if it does not come up on it, into SQLite, and the result says which. It runs with its default
uvicorn front (4 workers) or, with `--gunicorn-opts`, under gunicorn (4 sync workers): the
benchmark measures both and compares with the faster. Every job is one MLflow run; `clients`
threads each log whole runs, one request at a time, through one shared MlflowClient. A
configuration whose requests MLflow refuses is recorded as failed, with MLflow's answer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psycopg
from metric_points import TIMESTAMP_MS, Workload, point_values
from sqlalchemy.engine import make_url

from modelyard_devstack.processes import free_port, spawn, stop_pid

MAX_BATCH = 1000  # MLflow's limit of metrics per log_batch request
READY_TIMEOUT_S = 180.0
FRONTS: dict[str, list[str]] = {"uvicorn": [], "gunicorn": ["--gunicorn-opts", "--log-level warning"]}
# No telemetry leaves this machine; the shared client session gets a connection per thread.
ENVIRONMENT = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "MLFLOW_HTTP_POOL_MAXSIZE": "64"}

Call = tuple[int, Callable[[], object]]  # (points, request)


@dataclass(frozen=True)
class Tracking:
    """A running tracking server: its URI, which front serves it, and where it stores."""

    uri: str
    front: str
    backend: str


@dataclass(frozen=True)
class PeerRun:
    """One timed MLflow measurement."""

    api: str
    front: str
    clients: int
    calls: int
    points: int
    seconds: float
    error: str | None = None  # what MLflow answered when a request failed (the run counts as 0)

    @property
    def points_per_s(self) -> float:
        return 0.0 if self.error else self.points / self.seconds


def mlflow_version() -> str | None:
    """The installed mlflow's version, or None when it is missing."""
    try:
        return version("mlflow")
    except PackageNotFoundError:
        return None


@contextmanager
def tracking_server(database_url: str, folder: Path, front: str) -> Iterator[Tracking]:
    """A tracking server on a fresh PostgreSQL database, or on SQLite if that fails; stopped afterwards."""
    os.environ.update(ENVIRONMENT)
    name = f"mlflow_{front}_{uuid.uuid4().hex[:8]}"
    for uri, backend in [*_postgres(database_url, name), (f"sqlite:///{folder}/{name}.db", "SQLite")]:
        process, port = _start(uri, folder / front, front)
        try:
            if _ready(process, port, folder / front / "server.log"):
                yield Tracking(f"http://127.0.0.1:{port}", front, backend)
                return
            print(f"MLflow on {backend} did not come up; see {folder / front}", file=sys.stderr)
        finally:
            stop_pid(process.pid)
    raise RuntimeError(f"no MLflow tracking server came up ({front})")


def _postgres(database_url: str, name: str) -> list[tuple[str, str]]:
    """A fresh database `name` on our PostgreSQL as an MLflow backend URI (none if it cannot be made)."""
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # name: letters, digits and underscores only
    except psycopg.Error as error:
        print(f"no PostgreSQL database for MLflow ({error}); SQLite instead", file=sys.stderr)
        return []
    url = make_url(database_url).set(drivername="postgresql+psycopg", database=name)
    return [(url.render_as_string(hide_password=False), "PostgreSQL (same server as ours)")]


def _start(backend_uri: str, folder: Path, front: str) -> tuple[subprocess.Popen[bytes], int]:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--backend-store-uri", backend_uri, "--default-artifact-root", str(folder / "artifacts")]
    return spawn([*argv, *FRONTS[front]], folder / "server.log"), port


def _ready(process: subprocess.Popen[bytes], port: int, log: Path) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(log.read_text(errors="replace")[-2000:], file=sys.stderr)
            return False
        with suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as reply:
            if reply.status == 200:
                return True
        time.sleep(0.2)
    return False


def measure(tracking: Tracking, api: str, workload: Workload, clients: int, max_s: float) -> PeerRun:
    """`log_metric_run` or `log_batch_run`; a request MLflow refuses gives a failed PeerRun, not an error."""
    from mlflow.exceptions import MlflowException

    began = time.perf_counter()
    try:
        if api == "log_metric":
            return log_metric_run(tracking, workload, clients, max_s)
        return log_batch_run(tracking, workload, clients)
    except MlflowException as error:
        return PeerRun(
            api,
            tracking.front,
            clients,
            0,
            0,
            time.perf_counter() - began,
            " ".join(str(error).split())[:300],
        )


def log_metric_run(tracking: Tracking, workload: Workload, clients: int, max_s: float) -> PeerRun:
    """One log_metric request per point, job by job, epoch by epoch; stops after `max_s` seconds."""
    client, run_ids = _runs(tracking, workload, f"log_metric-{clients}")
    work: list[list[Call]] = []
    for job, run_id in enumerate(run_ids):
        calls: list[Call] = []
        for epoch in range(1, workload.epochs + 1):
            for key, value in point_values(job, epoch).items():
                stamp = TIMESTAMP_MS + 1000 * epoch
                calls.append((1, _bind(client.log_metric, run_id, key, value, stamp, epoch)))
        work.append(calls)
    return _drive("log_metric", tracking.front, work, clients, max_s)


def log_batch_run(tracking: Tracking, workload: Workload, clients: int) -> PeerRun:
    """Each run's points in log_batch requests of up to MAX_BATCH metrics; checks one history after."""
    from mlflow.entities import Metric

    client, run_ids = _runs(tracking, workload, f"log_batch-{clients}")
    work: list[list[Call]] = []
    for job, run_id in enumerate(run_ids):
        metrics = [
            Metric(key, value, TIMESTAMP_MS + 1000 * epoch, epoch)
            for epoch in range(1, workload.epochs + 1)
            for key, value in point_values(job, epoch).items()
        ]
        chunks = [metrics[start : start + MAX_BATCH] for start in range(0, len(metrics), MAX_BATCH)]
        work.append([(len(chunk), _bind(client.log_batch, run_id, metrics=chunk)) for chunk in chunks])
    run = _drive("log_batch", tracking.front, work, clients, max_s=float("inf"))
    history = client.get_metric_history(run_ids[-1], "val_loss")
    if sorted(m.step for m in history) != list(range(1, workload.epochs + 1)):
        raise RuntimeError(f"MLflow kept {len(history)} val_loss points of {workload.epochs}")
    return run


def _runs(tracking: Tracking, workload: Workload, name: str) -> tuple[Any, list[str]]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking.uri)
    experiment = client.create_experiment(f"{name}-{uuid.uuid4().hex[:8]}")
    return client, [client.create_run(experiment).info.run_id for _ in range(workload.jobs)]


def _bind(call: Callable[..., object], *args: object, **kwargs: object) -> Callable[[], object]:
    return lambda: call(*args, **kwargs)


def _drive(api: str, front: str, work: list[list[Call]], clients: int, max_s: float) -> PeerRun:
    """Run the jobs' requests on `clients` threads (each job in order on one thread), timed."""
    began = time.perf_counter()
    deadline = began + max_s

    def one_job(calls: list[Call]) -> tuple[int, int]:
        done = points = 0
        for size, request in calls:
            if time.perf_counter() > deadline:
                break
            request()
            done, points = done + 1, points + size
        return done, points

    with ThreadPoolExecutor(max_workers=clients) as pool:
        finished = list(pool.map(one_job, work))
    seconds = time.perf_counter() - began
    calls, points = sum(f[0] for f in finished), sum(f[1] for f in finished)
    return PeerRun(api, front, clients, calls, points, seconds)
