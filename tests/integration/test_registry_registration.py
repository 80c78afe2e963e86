"""A completed training job registers a draft version: artifact copied and checked, numbered, once."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard.v1 import events_pb2, jobs_pb2
from modelyard_devstack.platform import Platform
from modelyard_devstack.processes import eventually
from tests.integration.job_client import JobClient
from tests.integration.registry_client import DRAFT, RegistryClient
from tests.integration.trainers import Trainers

pytestmark = pytest.mark.integration


@pytest.fixture
async def registry(services: Platform) -> AsyncIterator[RegistryClient]:
    """A super_admin client of registry-svc."""
    async with RegistryClient.connect(services.registry_target, services.token()) as client:
        yield client


async def test_a_completed_job_registers_one_draft_version_with_its_artifact_in_the_registry_store(
    jobs: JobClient,
    trainers: Trainers,
    registry: RegistryClient,
    services: Platform,
    fresh_org: str,
    digits_uri: str,
) -> None:
    await trainers.start("t-register")
    job = await jobs.create(fresh_org, digits_uri, epochs=1)
    done = await jobs.wait_for(job.job_id, jobs_pb2.JOB_STATE_COMPLETED)

    version = await registry.registered_from(fresh_org, job.job_id)

    assert version.status == DRAFT
    assert version.semantic_version == "1.0.0"
    assert version.ai_module == "digit-reader"
    assert version.artifact_sha256 == done.artifact_sha256
    stored = services.workdir / "registry-blobs"
    blob = next(stored.rglob(done.artifact_sha256))
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == done.artifact_sha256
    assert version.artifact_size_bytes == blob.stat().st_size
    assert version.config.family == "image_classifier"
    assert list(version.config.input_shape) == [1, 8, 8]
    assert list(version.config.class_names) == [str(n) for n in range(10)]
    assert version.dataset_uri == digits_uri
    assert version.created_by == "dev"
    assert version.HasField("registered_at")
    assert version.training_metrics["val_accuracy"] > 0.5
    # The trainer's run folder is no longer the record: removing it changes nothing.
    await asyncio.to_thread(Path(urlparse(done.artifact_uri).path).unlink)
    assert (await registry.get(version.version_id)).artifact_sha256 == done.artifact_sha256
    assert len(await registry.versions(fresh_org)) == 1


async def test_a_restart_mid_stream_and_a_replay_of_the_whole_job_log_register_nothing_twice(
    jobs: JobClient,
    trainers: Trainers,
    registry: RegistryClient,
    services: Platform,
    engine: AsyncEngine,
    fresh_org: str,
    digits_uri: str,
) -> None:
    await trainers.start("t-register-restart")
    services.stop("registry-svc")  # the job completes while registry-svc is down
    try:
        job = await jobs.create(fresh_org, digits_uri, epochs=1)
        await jobs.wait_for(job.job_id, jobs_pb2.JOB_STATE_COMPLETED)
    finally:
        await asyncio.to_thread(services.restart_service, "registry-svc")
    version = await registry.registered_from(fresh_org, job.job_id)
    # Forget how far the reaction got: it reads job-svc's whole log again, every JobCompleted included.
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM registry_reactions.projection_checkpoints"))
    await asyncio.to_thread(services.restart_service, "registry-svc")
    completed_at = await _position_of_completion(jobs, job.job_id)

    async def caught_up() -> bool:  # the replay got past this job's JobCompleted again
        async with engine.connect() as conn:
            done = await conn.execute(
                text(
                    "SELECT max(position) FROM registry_reactions.projection_checkpoints WHERE source = 'job'"
                )
            )
            return (done.scalar() or 0) >= completed_at

    await eventually(caught_up, 60, "the reaction to read the job log again")
    registered = [
        e
        for e in await _all_events(registry.stub)
        if e.type == "ModelVersionRegistered" and job.job_id in e.data_json
    ]
    assert len(registered) == 1
    assert [v.version_id for v in await registry.versions(fresh_org)] == [version.version_id]


async def _all_events(stub: Any) -> list[events_pb2.EventEnvelope]:
    found: list[events_pb2.EventEnvelope] = []
    while True:
        after = found[-1].position if found else 0
        page = await stub.ReadEvents(events_pb2.ReadEventsRequest(after_position=after, limit=1000))
        if not page.events:
            return found
        found.extend(page.events)


async def _position_of_completion(jobs: JobClient, job_id: str) -> int:
    completed = [
        e for e in await _all_events(jobs.jobs) if e.type == "JobCompleted" and e.stream_id == job_id
    ]
    return completed[0].position
