"""Fixtures of the console's unit tests: the app over a fake job-svc, driven by Starlette's TestClient."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from console_fakes import FakeGateway, FakeJobService, FakeRegistryService
from starlette.testclient import TestClient

from modelyard_console.app import build_app
from modelyard_console.settings import ConsoleSettings


@pytest.fixture
def job_svc() -> FakeJobService:
    return FakeJobService()


@pytest.fixture
def registry_svc() -> FakeRegistryService:
    return FakeRegistryService()


@pytest.fixture
def gateway(job_svc: FakeJobService, registry_svc: FakeRegistryService) -> FakeGateway:
    return FakeGateway(job_svc, registry_svc)


@pytest.fixture
def browser(gateway: FakeGateway) -> Iterator[TestClient]:
    """A browser on the console (not signed in), redirects not followed."""
    app = build_app(ConsoleSettings(), gateway=gateway)  # type: ignore[arg-type]
    with TestClient(app, follow_redirects=False) as client:
        yield client
