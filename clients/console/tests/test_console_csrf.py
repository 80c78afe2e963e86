"""A POST acts only with its session's CSRF token and from the console's own origin."""

from __future__ import annotations

from console_fakes import FakeJobService, a_job
from console_pages import sign_in
from starlette.testclient import TestClient


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
