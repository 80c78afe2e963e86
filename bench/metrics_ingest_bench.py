"""Metric ingestion (issue target (c)): points/s from running jobs into job-svc's views, against MLflow.

Ours: 50 running jobs' `EpochCompleted` events appended to trainer-svc's store, through the relay,
Kafka and job-svc's views projection into `job_views.epoch_metrics` (metrics_ours.py). Peer: a
real MLflow tracking server on the same PostgreSQL, fed the same points with `log_metric` (one
point per request) and `log_batch` (up to 1,000 per request) (metrics_mlflow.py). One embedded
PostgreSQL with durable settings serves both. Results go to bench/results/metrics_ingest.json and
metrics_ingest.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import statistics
import sys
import tempfile
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from metric_points import EPOCH_FIELDS, POINTS_PER_EPOCH, TASK_METRICS, Workload
from metrics_mlflow import FRONTS, MAX_BATCH, PeerRun, measure, mlflow_version
from metrics_mlflow import tracking_server as mlflow_server
from metrics_ours import POLL_S, Ingest, measure_ours

from modelyard_devstack.platform import platform
from modelyard_devstack.stack import infra

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"log_metric": 100.0, "log_batch": 2.0}
JOBS = 50
EPOCHS = {"full": 200, "quick": 40}
EPOCHS_PER_APPEND = [20, 1]
# MLflow's client threads: one, and as many as its 4 server workers can keep busy. With one thread
# per job (50) its server ran out of database connections (QueuePool limit, 30 s timeout) once.
CLIENT_THREADS = (1, 8)
LOG_METRIC_EPOCHS = 6  # 50 jobs × 6 epochs × 10 = 3,000 points, one request each
LOG_METRIC_MAX_S = {"full": 60.0, "quick": 15.0}  # ... or fewer, when the requests take longer
PG_SETTINGS = ("server_version", "fsync", "synchronous_commit", "shared_buffers")
MISSING = "mlflow is not installed: .venv/bin/pip install -r bench/requirements-bench.txt -c constraints.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the epochs, one run of ours")
    args = parser.parse_args()
    mlflow = mlflow_version()
    if mlflow is None:
        sys.exit(MISSING)
    size = "quick" if args.quick else "full"
    workload = Workload(JOBS, EPOCHS[size])
    repeats = 1 if args.quick else 3
    with infra(durable=True) as servers, tempfile.TemporaryDirectory(prefix="metrics-bench-") as folder:
        with platform(servers, Path(folder) / "platform") as services:
            ours = asyncio.run(
                measure_ours(servers.database_url, workload, EPOCHS_PER_APPEND, repeats, services.signers)
            )
        peer, backends = _measure_peer(servers.database_url, Path(folder), workload, LOG_METRIC_MAX_S[size])
        machine = _machine(servers.database_url, mlflow, backends)
    parameters = _parameters(workload, repeats, LOG_METRIC_MAX_S[size], args.quick)
    print(_write_results(machine, parameters, ours, peer))


def _measure_peer(
    database_url: str, folder: Path, workload: Workload, max_s: float
) -> tuple[list[PeerRun], dict[str, str]]:
    runs: list[PeerRun] = []
    backends: dict[str, str] = {}
    single = Workload(workload.jobs, LOG_METRIC_EPOCHS)
    for front in FRONTS:
        with mlflow_server(database_url, folder, front) as tracking:
            backends[front] = tracking.backend
            _progress(f"MLflow ({front}) on {tracking.backend} at {tracking.uri}")
            for clients in CLIENT_THREADS:
                for api, size in (("log_metric", single), ("log_batch", workload)):
                    run = measure(tracking, api, size, clients, max_s)
                    runs.append(run)
                    _progress(f"MLflow {api} ({front}, {clients} client thread(s)): {_outcome(run)}")
    return runs, backends


def _outcome(run: PeerRun) -> str:
    if run.error:
        return f"failed after {run.seconds:.2f} s: {run.error}"
    return (
        f"{run.points:,} points in {run.calls:,} requests, {run.seconds:.2f} s, "
        f"{run.points_per_s:,.0f} points/s"
    )


def _parameters(workload: Workload, repeats: int, max_s: float, quick: bool) -> dict[str, Any]:
    return {
        "quick": quick,
        "jobs": workload.jobs,
        "epochs_per_job": workload.epochs,
        "points_per_epoch": POINTS_PER_EPOCH,
        "point_keys": [*EPOCH_FIELDS, *[f"metrics.{name}" for name in TASK_METRICS]],
        "ours_points": workload.points,
        "ours_epochs_per_append": EPOCHS_PER_APPEND,
        "ours_median_of_runs": repeats,
        "ours_poll_s": POLL_S,
        "log_metric_points_max": workload.jobs * LOG_METRIC_EPOCHS * POINTS_PER_EPOCH,
        "log_metric_max_s": max_s,
        "log_batch_points": workload.points,
        "log_batch_max_metrics_per_request": MAX_BATCH,
        "mlflow_client_threads": list(CLIENT_THREADS),
    }


def _write_results(
    machine: dict[str, Any], parameters: dict[str, Any], ours: dict[int, list[Ingest]], peer: list[PeerRun]
) -> str:
    best = {api: max((r for r in peer if r.api == api), key=lambda r: r.points_per_s) for api in TARGETS}
    if failed := [api for api, run in best.items() if run.error]:
        raise RuntimeError(f"every MLflow configuration of {failed} failed: {[r.error for r in peer]}")
    comparisons = [_comparison(per_append, runs, best) for per_append, runs in ours.items()]
    document = {
        "machine": machine,
        "parameters": parameters,
        "comparisons": comparisons,
        "ours": [_ingest_json(run) for runs in ours.values() for run in runs],
        "mlflow": [{**asdict(run), "points_per_s": round(run.points_per_s, 1)} for run in peer],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "metrics_ingest.json").write_text(json.dumps(document, indent=2) + "\n")
    table = _markdown(machine, parameters, comparisons, ours, peer)
    (RESULTS / "metrics_ingest.md").write_text(table)
    return table


def _comparison(per_append: int, runs: list[Ingest], best: dict[str, PeerRun]) -> dict[str, Any]:
    rate = statistics.median(run.points_per_s for run in runs)
    row: dict[str, Any] = {"ours_epochs_per_append": per_append, "ours_points_per_s": round(rate, 1)}
    for api, target in TARGETS.items():
        ratio = rate / best[api].points_per_s
        row[api] = {
            "mlflow_points_per_s": round(best[api].points_per_s, 1),
            "mlflow_front": best[api].front,
            "mlflow_clients": best[api].clients,
            "ratio": round(ratio, 2),
            "target": target,
            "met": ratio >= target,
        }
    return row


def _ingest_json(run: Ingest) -> dict[str, Any]:
    return {
        "epochs_per_append": run.epochs_per_append,
        "jobs": run.workload.jobs,
        "events": run.workload.events,
        "points": run.workload.points,
        "appended_s": round(run.appended_s, 3),
        "visible_s": round(run.visible_s, 3),
        "points_per_s": round(run.points_per_s, 1),
    }


def _markdown(
    machine: dict[str, Any],
    parameters: dict[str, Any],
    comparisons: list[dict[str, Any]],
    ours: dict[int, list[Ingest]],
    peer: list[PeerRun],
) -> str:
    lines = [
        "| ours: epochs per append | ours points/s | MLflow log_metric points/s | MLflow log_batch points/s "
        "| ours / log_metric | target | met? | ours / log_batch | target | met? |",
        "|---:|---:|---:|---:|---:|---:|:---:|---:|---:|:---:|",
    ]
    for row in comparisons:
        metric, batch = row["log_metric"], row["log_batch"]
        lines.append(
            f"| {row['ours_epochs_per_append']} | {row['ours_points_per_s']:,.0f} "
            f"| {metric['mlflow_points_per_s']:,.0f} | {batch['mlflow_points_per_s']:,.0f} "
            f"| {metric['ratio']:,.1f}× | ≥ {metric['target']:.0f}× | {_met(metric)} "
            f"| {batch['ratio']:,.2f}× | ≥ {batch['target']:.0f}× | {_met(batch)} |"
        )
    lines += ["", *_measurements(ours, peer), "", *_notes(machine, parameters, comparisons)]
    return "\n".join(lines) + "\n"


def _measurements(ours: dict[int, list[Ingest]], peer: list[PeerRun]) -> list[str]:
    lines = [
        "| measurement | requests | points | last request returned (s) | all points stored (s) | points/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for per_append, runs in ours.items():
        run = sorted(runs, key=lambda r: r.points_per_s)[len(runs) // 2]
        appends = run.workload.jobs * -(-run.workload.epochs // per_append)
        lines.append(
            f"| ours, {run.workload.jobs} jobs, {per_append} epoch(s)/append (median of {len(runs)}) "
            f"| {appends:,} appends | {run.workload.points:,} | {run.appended_s:.2f} | {run.visible_s:.2f} "
            f"| {run.points_per_s:,.0f} |"
        )
    for r in peer:
        rate = f"failed: {r.error[:120]}" if r.error else f"{r.points_per_s:,.0f}"
        lines.append(
            f"| MLflow {r.api}, {r.front}, {r.clients} client thread(s) | {r.calls:,} | {r.points:,} "
            f"| {r.seconds:.2f} | {r.seconds:.2f} | {rate} |"
        )
    return lines


def _notes(
    machine: dict[str, Any], parameters: dict[str, Any], comparisons: list[dict[str, Any]]
) -> list[str]:
    pg, libraries, p = machine["postgres"], machine["libraries"], parameters
    backends = ", ".join(f"{front}: {backend}" for front, backend in machine["mlflow_backends"].items())
    metric, batch = comparisons[0]["log_metric"], comparisons[0]["log_batch"]
    return [
        f"Machine: {machine['cpu_count']} CPUs, Python {machine['python']}, "
        f"PostgreSQL {pg['server_version']} (fsync {pg['fsync']}, synchronous_commit "
        f"{pg['synchronous_commit']}), MLflow {libraries['mlflow']} (backend {backends}).",
        f"{p['points_per_epoch']} points per epoch ({', '.join(p['point_keys'])}); ours "
        f"{p['ours_points']:,} points per run, log_batch {p['log_batch_points']:,}, log_metric up to "
        f"{p['log_metric_points_max']:,} or {p['log_metric_max_s']:.0f} s.",
        "Ratios use the fastest MLflow configuration of each API (log_metric: "
        f"{metric['mlflow_front']}, {metric['mlflow_clients']} client thread(s); "
        f"log_batch: {batch['mlflow_front']}, {batch['mlflow_clients']} client thread(s)).",
    ]


def _met(row: dict[str, Any]) -> str:
    return "yes" if row["met"] else "NO"


def _machine(database_url: str, mlflow: str, backends: dict[str, str]) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        sql = "SELECT n, current_setting(n) FROM unnest(%s::text[]) AS n"
        settings: dict[str, str] = dict(conn.execute(sql, (list(PG_SETTINGS),)).fetchall())
    libraries = {name: version(name) for name in ("sqlalchemy", "psycopg", "aiokafka", "pydantic")}
    return {
        "cpu_count": os.cpu_count(),
        "platform": host.platform(),
        "python": host.python_version(),
        "postgres": settings,
        "mlflow_backends": backends,
        "libraries": {"mlflow": mlflow, **libraries},
    }


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
