"""Fixtures of the cross-process tests: an engine and a fresh store per test."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_devstack import Infra
from modelyard_devstack.platform import Platform, platform
from modelyard_events.db import create_engine
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.signing import TEST_SIGNER
from modelyard_trainer.datasets.digits import export_digits
from tests.integration.dataset_client import DatasetClient
from tests.integration.job_client import JobClient
from tests.integration.trainers import Trainers

pytestmark = pytest.mark.integration
TINY_DATASET_LIMIT = 20_000  # bytes of dataset data for organizations on the professional plan here
REGISTRY_GATES = {
    "digit-reader": [{"metric": "f1", "min": 0.5}, {"metric": "latency_p95_ms", "max": 5000}],
    "strict-reader": [{"metric": "f1", "min": 0.9999}, {"metric": "min_class_recall", "min": 0.9999}],
}


@pytest.fixture
async def engine(stack: Infra) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(stack.database_url, pool_size=10)
    yield engine
    await engine.dispose()


@pytest.fixture
async def store(engine: AsyncEngine, unique_schema: str) -> AsyncIterator[PostgresEventStore]:
    store = PostgresEventStore(engine, unique_schema, signer=TEST_SIGNER)
    await store.create_schema()
    yield store
    await store.close()


@pytest.fixture(scope="session")
def services(stack: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Every service as a real process for the whole session (lease TTL 3 s).

    Tests start the trainer workers they need and stop them before they end; they use
    organizations of their own (`fresh_org`), so plan quotas and queues do not mix.
    """
    plans = json.dumps({"smallco": "professional", "tinyco": "professional"})
    namespace = f"it-{uuid.uuid4().hex[:8]}"  # topics of its own: other tests publish to the shared broker
    workdir = tmp_path_factory.mktemp("platform")
    env = {
        "MODELYARD_ORG_PLANS": plans,
        # Professional sets no dataset limit; a small one here lets a test reach it with a few files.
        "MODELYARD_PLAN_LIMITS": json.dumps({"professional": {"dataset_bytes": TINY_DATASET_LIMIT}}),
        "MODELYARD_MIN_SAMPLES_PER_CLASS": "4",
        # registry-svc's gates: lenient for the usual module, impossible for "strict-reader".
        "MODELYARD_REGISTRY_GATES": json.dumps(REGISTRY_GATES),
    }
    with platform(stack, workdir, lease_ttl_s=3.0, topic_namespace=namespace, env=env) as running:
        yield running


@pytest.fixture(scope="session")
def digits_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """scikit-learn's digits as the .npz the image classifier reads, as a file URI."""
    return export_digits(tmp_path_factory.mktemp("data") / "digits.npz").as_uri()


@pytest.fixture
def fresh_org() -> str:
    """An organization no other test uses (on the default Enterprise plan)."""
    return f"org-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def jobs(services: Platform) -> AsyncIterator[JobClient]:
    """A super_admin client of job-svc."""
    async with JobClient.connect(services.job_target, services.token()) as client:
        yield client


@pytest.fixture
async def datasets(services: Platform) -> AsyncIterator[DatasetClient]:
    """A super_admin client of dataset-svc."""
    async with DatasetClient.connect(services.dataset_target, services.token()) as client:
        yield client


@pytest.fixture
async def trainers(services: Platform, jobs: JobClient) -> AsyncIterator[Trainers]:
    """Trainer workers for one test; stopped, and seen gone by job-svc, afterwards."""
    started = Trainers(services, jobs)
    await started.stop_all()  # start from a fleet with no live trainer
    yield started
    await started.stop_all()
