"""Fixtures of yard's tests: in-process fakes of job-svc, dataset-svc, registry-svc and deploy-svc, the
real artifact download endpoint, and runners of the CLI pointed at them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from dataset_fakes import FakeDatasetSvc, serving
from deploy_fakes import FakeDeploySvc
from deploy_fakes import serving as serving_deploy
from fake_loops import loop_thread
from registry_fakes import DownloadEndpoint, FakeRegistrySvc, download_endpoint
from registry_fakes import serving as serving_registry
from yard_fakes import FakeJobService, FakeJobSvc, FakeQueryService
from yard_runner import TOKEN, Yard, runner_for

from modelyard.v1 import jobs_pb2_grpc


@pytest.fixture
def job_svc() -> Iterator[FakeJobSvc]:
    """A fake job-svc served on a free port of 127.0.0.1 by grpc's sync server (its own threads)."""
    fake = FakeJobSvc()
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    jobs_pb2_grpc.add_JobServiceServicer_to_server(FakeJobService(fake), server)
    jobs_pb2_grpc.add_QueryServiceServicer_to_server(FakeQueryService(fake), server)
    fake.target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    yield fake
    server.stop(grace=None)


@pytest.fixture
def yard(job_svc: FakeJobSvc) -> Yard:
    """Run yard with the given arguments against `job_svc`, with MODELYARD_TOKEN set (env overrides)."""
    return runner_for({"MODELYARD_JOB_SVC_TARGET": job_svc.target})


@pytest.fixture
def dataset_svc() -> Iterator[FakeDatasetSvc]:
    """A fake dataset-svc served on a free port of 127.0.0.1 by a grpc.aio server (its own loop thread)."""
    with serving(FakeDatasetSvc()) as fake:
        yield fake


@pytest.fixture
def dataset_yard(dataset_svc: FakeDatasetSvc) -> Yard:
    """Run yard against `dataset_svc` (MODELYARD_DATASET_SVC_TARGET), with MODELYARD_TOKEN set."""
    return runner_for({"MODELYARD_DATASET_SVC_TARGET": dataset_svc.target})


@pytest.fixture
def fake_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop on its own thread for the test's in-process async servers."""
    with loop_thread("fake-servers") as loop:
        yield loop


@pytest.fixture
def registry_svc(fake_loop: asyncio.AbstractEventLoop) -> Iterator[FakeRegistrySvc]:
    """A fake registry-svc served on a free port of 127.0.0.1 by a grpc.aio server on `fake_loop`."""
    with serving_registry(FakeRegistrySvc(), fake_loop) as fake:
        yield fake


@pytest.fixture
def registry_yard(registry_svc: FakeRegistrySvc) -> Yard:
    """Run yard against `registry_svc` (MODELYARD_REGISTRY_SVC_TARGET), with MODELYARD_TOKEN set."""
    return runner_for({"MODELYARD_REGISTRY_SVC_TARGET": registry_svc.target})


@pytest.fixture
def deploy_svc(fake_loop: asyncio.AbstractEventLoop) -> Iterator[FakeDeploySvc]:
    """A fake deploy-svc served on a free port of 127.0.0.1 by a grpc.aio server on `fake_loop`."""
    with serving_deploy(FakeDeploySvc(), fake_loop) as fake:
        yield fake


@pytest.fixture
def deploy_yard(deploy_svc: FakeDeploySvc) -> Yard:
    """Run yard against `deploy_svc` (MODELYARD_DEPLOY_TARGET), with MODELYARD_TOKEN set."""
    return runner_for({"MODELYARD_DEPLOY_TARGET": deploy_svc.target})


@pytest.fixture
def downloads(fake_loop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[DownloadEndpoint]:
    """The registry's real artifact download endpoint on `fake_loop`, serving the tests' token only."""
    with download_endpoint(tmp_path / "blobs", TOKEN, fake_loop) as endpoint:
        yield endpoint


@pytest.fixture
def offline_yard() -> Yard:
    """Run yard with no service to call (commands that work offline)."""
    return runner_for({})
