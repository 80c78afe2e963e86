"""Fixtures of the console's unit tests: the app over a fake job-svc, driven by Starlette's TestClient."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from console_fakes import FakeGateway, FakeJobService, FakeRegistryService, token_for
from starlette.testclient import TestClient

from modelyard_console.app import build_app
from modelyard_console.settings import ConsoleSettings

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


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


def csrf_of(page: str) -> str:
    """The CSRF token a page's forms carry."""
    found = CSRF_FIELD.search(page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(browser: TestClient, token: str | None = None) -> str:
    """Sign in through the form; the session's CSRF token."""
    form = browser.get("/signin")
    response = browser.post("/signin", data={"token": token or token_for(), "csrf_token": csrf_of(form.text)})
    assert response.status_code == 303, response.text
    return csrf_of(browser.get("/queue").text)
