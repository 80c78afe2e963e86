"""Completed run → version registered (issue 12, item 11): p50/p99, on the real stack.

Starts the embedded stack, every service and one trainer worker (modelyard_devstack.platform), then
one job at a time trains the digits for one epoch; the latency is ModelVersionRegistered.occurred_at
(registry-svc copied the artifact into its store, checked its SHA-256, read its config and appended
the version) minus JobCompleted.occurred_at (job-svc recorded the run's end). Both clocks are this
machine's. The floor it sits on: the registry reads JobCompleted from Kafka, copies and hashes the
artifact and appends one event. Results: bench/results/registry_registration.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
from datetime import datetime
from pathlib import Path

from google.protobuf import struct_pb2

from modelyard.v1 import events_pb2, jobs_pb2, jobs_pb2_grpc, registry_pb2_grpc
from modelyard_devstack.platform import Platform, platform
from modelyard_devstack.processes import eventually
from modelyard_devstack.stack import infra
from modelyard_grpc import channel
from modelyard_trainer.datasets.digits import export_digits

RESULTS = Path(__file__).resolve().parent / "results"


async def _events(
    stub: registry_pb2_grpc.RegistryServiceStub | jobs_pb2_grpc.JobServiceStub,
) -> list[events_pb2.EventEnvelope]:
    found: list[events_pb2.EventEnvelope] = []
    after = 0
    while True:
        page = await stub.ReadEvents(events_pb2.ReadEventsRequest(after_position=after, limit=1000))
        found.extend(page.events)
        if not page.events:
            return found
        after = page.events[-1].position


async def one_run(running: Platform, org: str, uri: str) -> float:
    """Train one epoch, wait for its version; ms from JobCompleted to ModelVersionRegistered."""
    values = struct_pb2.Struct()
    values.update({"epochs": 1})
    async with (
        channel(running.job_target, running.token()) as jch,
        channel(running.registry_target, running.token()) as rch,
    ):
        jobs, registry = jobs_pb2_grpc.JobServiceStub(jch), registry_pb2_grpc.RegistryServiceStub(rch)
        job = await jobs.CreateJob(
            jobs_pb2.CreateJobRequest(
                name="registration probe", ai_module="bench-digits", family="image_classifier",
                dataset_uri=uri, hyperparameters=values, org_id=org,
            )
        )  # fmt: skip
        times: dict[str, datetime] = {}

        async def registered() -> bool:
            for event in await _events(registry):
                if (
                    event.type == "ModelVersionRegistered"
                    and json.loads(event.data_json)["training_job_id"] == job.job_id
                ):
                    times["registered"] = event.occurred_at.ToDatetime()
            return "registered" in times

        await eventually(registered, 180, f"job {job.job_id} registered")
        for event in await _events(jobs):
            if event.type == "JobCompleted" and event.stream_id == job.job_id:
                times["completed"] = event.occurred_at.ToDatetime()
    return (times["registered"] - times["completed"]).total_seconds() * 1000


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def measure(running: Platform, uri: str, runs: int) -> list[float]:
    """`runs` sequential probes after one warm-up."""
    running.spawn_trainer("bench-trainer")
    await running.trainer_alive("bench-trainer")
    samples = []
    for i in range(runs + 1):
        sample = await one_run(running, f"bench-{i // 10}", uri)  # Enterprise: 10 jobs a month per org
        if i:
            samples.append(sample)
    return samples


def write(samples: list[float]) -> dict[str, object]:
    """bench/results/registry_registration.json and .md."""
    result = {
        "runs": len(samples),
        "p50_ms": round(percentile(samples, 50), 1),
        "p99_ms": round(percentile(samples, 99), 1),
        "mean_ms": round(statistics.fmean(samples), 1),
        "max_ms": round(max(samples), 1),
        "cpus": os.cpu_count(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "registry_registration.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Completed run → model version registered",
        "",
        f"{result['runs']} one-epoch digits runs, one at a time, embedded PostgreSQL + Tansu,",
        f"{result['cpus']} CPUs.",
        "From job-svc's JobCompleted to registry-svc's ModelVersionRegistered (artifact copied into the",
        "registry's store and its SHA-256 checked, config read, version appended).",
        "",
        "| p50 ms | p99 ms | mean ms | max ms |",
        "|---:|---:|---:|---:|",
        f"| {result['p50_ms']} | {result['p99_ms']} | {result['mean_ms']} | {result['max_ms']} |",
    ]
    (RESULTS / "registry_registration.md").write_text("\n".join(lines) + "\n")
    return result


def main() -> None:
    """Run the probes and write the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelyard-registry-") as tmp, infra() as servers:
        uri = export_digits(Path(tmp) / "digits.npz").as_uri()
        with platform(servers, Path(tmp) / "platform", lease_ttl_s=10.0) as running:
            samples = asyncio.run(measure(running, uri, args.runs))
    write(samples)
    print((RESULTS / "registry_registration.md").read_text())


if __name__ == "__main__":
    main()
