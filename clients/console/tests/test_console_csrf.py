"""A POST acts only with its session's CSRF token and from the console's own origin (its public one
behind a proxy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from console_fakes import FakeGateway, FakeJobService, a_job
from console_pages import sign_in
from starlette.testclient import TestClient

from modelyard_console.app import build_app
from modelyard_console.settings import PUBLIC_ORIGIN_ENV, ConsoleSettings, parse_settings


def test_a_post_without_the_csrf_token_is_refused_and_calls_nothing(
    browser: TestClient, job_svc: FakeJobService
) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    sign_in(browser)
    response = browser.post("/jobs/j-1/cancel", data={"reason": "forged"})
    assert response.status_code == 403
    assert "security token" in response.text
    assert not [rpc for rpc, _ in job_svc.calls if rpc == "CancelJob"]


def test_a_post_with_another_sessions_token_is_refused(browser: TestClient, job_svc: FakeJobService) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    sign_in(browser)
    response = browser.post("/jobs/j-1/pause", data={"csrf_token": "guessed"})
    assert response.status_code == 403
    assert job_svc.jobs["j-1"].state == a_job().state


def test_a_post_from_another_origin_is_refused(browser: TestClient, job_svc: FakeJobService) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    csrf = sign_in(browser)
    response = browser.post(
        "/jobs/j-1/pause", data={"csrf_token": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert "evil.example" in response.text


def test_the_csrf_token_in_the_htmx_header_is_accepted(browser: TestClient, job_svc: FakeJobService) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    csrf = sign_in(browser)
    response = browser.post("/jobs/j-1/pause", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 303
    assert [rpc for rpc, _ in job_svc.calls if rpc == "PauseJob"] == ["PauseJob"]


PUBLIC = "https://console.example.com"


@pytest.fixture
def proxied(gateway: FakeGateway) -> Iterator[TestClient]:
    """The console behind a TLS proxy: it sees http://testserver, browsers use PUBLIC."""
    app = build_app(ConsoleSettings(public_origin=PUBLIC), gateway=gateway)  # type: ignore[arg-type]
    with TestClient(app, follow_redirects=False) as client:
        yield client


def test_behind_a_proxy_a_post_from_the_public_origin_is_accepted(
    proxied: TestClient, job_svc: FakeJobService
) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    csrf = sign_in(proxied)
    response = proxied.post("/jobs/j-1/pause", data={"csrf_token": csrf}, headers={"Origin": PUBLIC})
    assert response.status_code == 303
    assert [rpc for rpc, _ in job_svc.calls if rpc == "PauseJob"] == ["PauseJob"]


def test_behind_a_proxy_a_post_from_the_internal_origin_is_refused(
    proxied: TestClient, job_svc: FakeJobService
) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    csrf = sign_in(proxied)
    response = proxied.post(
        "/jobs/j-1/pause", data={"csrf_token": csrf}, headers={"Origin": "http://testserver"}
    )
    assert response.status_code == 403
    assert not [rpc for rpc, _ in job_svc.calls if rpc == "PauseJob"]


def test_the_public_origin_comes_from_the_option_or_the_environment() -> None:
    assert parse_settings([], {}).public_origin is None
    assert parse_settings([], {PUBLIC_ORIGIN_ENV: PUBLIC + "/"}).public_origin == PUBLIC
    given = parse_settings(["--public-origin", "https://Other.example:8443"], {PUBLIC_ORIGIN_ENV: PUBLIC})
    assert given.public_origin == "https://other.example:8443"


@pytest.mark.parametrize("value", ["console.example.com", "https://console.example.com/path", "ftp://x"])
def test_a_public_origin_that_is_no_origin_is_refused_at_start(value: str) -> None:
    with pytest.raises(SystemExit):
        parse_settings(["--public-origin", value], {})
