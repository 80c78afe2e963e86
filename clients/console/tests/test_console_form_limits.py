"""Abuse of the forms: a POST without a session is sent to sign in with its body unread; an oversized
or many-fielded form is refused before anything is called; a priority outside 0..100 is refused on the
page, not sent."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from console_fakes import FakeJobService, a_job
from console_pages import sign_in
from starlette.testclient import TestClient

from modelyard_console.csrf import MAX_FIELD_CHARS, MAX_FIELDS, MAX_FORM_BYTES

POSTS = [
    "/jobs/j-1/pause",
    "/jobs/j-1/resume",
    "/jobs/j-1/retry",
    "/jobs/j-1/cancel",
    "/jobs/j-1/priority",
    "/jobs/new",
    "/models/v-1/approve",
    "/signin",
    "/signout",
]


def _post_counting_reads(app: Any, path: str) -> tuple[int, int]:
    """POST `path` without a cookie straight to the ASGI app: (response status, body reads)."""
    reads: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        reads.append(1)
        return {"type": "http.request", "body": b"priority=1", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/x-www-form-urlencoded")],
        "client": ("203.0.113.9", 4000), "server": ("testserver", 80),
    }  # fmt: skip
    anyio.run(app, scope, receive, send)
    return sent[0]["status"], len(reads)


@pytest.mark.parametrize("path", POSTS)
def test_a_post_without_a_session_is_sent_to_sign_in_with_its_body_unread(
    browser: TestClient, job_svc: FakeJobService, path: str
) -> None:
    status, reads = _post_counting_reads(browser.app, path)
    assert status == 303
    assert reads == 0
    assert job_svc.calls == []


def test_an_oversized_form_is_refused_with_413(browser: TestClient, job_svc: FakeJobService) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    csrf = sign_in(browser)
    response = browser.post("/jobs/j-1/pause", data={"csrf_token": csrf, "reason": "x" * MAX_FORM_BYTES})
    assert response.status_code == 413
    assert not [rpc for rpc, _ in job_svc.calls if rpc == "PauseJob"]


def test_a_chunked_form_without_a_length_is_counted_and_refused(
    browser: TestClient, job_svc: FakeJobService
) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    csrf = sign_in(browser)

    def chunks() -> Any:
        yield f"csrf_token={csrf}&reason=".encode()
        for _ in range(MAX_FORM_BYTES // 1024 + 1):
            yield b"x" * 1024

    response = browser.post(
        "/jobs/j-1/pause",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


def test_an_oversized_field_is_refused_with_413(browser: TestClient, job_svc: FakeJobService) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    csrf = sign_in(browser)
    response = browser.post(
        "/jobs/j-1/pause", data={"csrf_token": csrf, "reason": "x" * (MAX_FIELD_CHARS + 1)}
    )
    assert response.status_code == 413


def test_a_form_with_too_many_fields_is_refused_with_400(
    browser: TestClient, job_svc: FakeJobService
) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    csrf = sign_in(browser)
    fields = {"csrf_token": csrf, **{f"f{n}": "1" for n in range(MAX_FIELDS + 1)}}
    response = browser.post("/jobs/j-1/pause", data=fields)
    assert response.status_code == 400
    assert not [rpc for rpc, _ in job_svc.calls if rpc == "PauseJob"]


@pytest.mark.parametrize("priority", ["99999999999", "101", "-1", "high", ""])
def test_a_priority_outside_0_to_100_is_refused_on_the_page_and_not_sent(
    browser: TestClient, job_svc: FakeJobService, priority: str
) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    csrf = sign_in(browser)
    response = browser.post("/jobs/j-1/priority", data={"csrf_token": csrf, "priority": priority})
    assert response.status_code == 303
    assert not [rpc for rpc, _ in job_svc.calls if rpc == "SetPriority"]
    page = browser.get(response.headers["location"]).text
    assert "priority must be between 0 (lowest) and 100 (highest)" in page
    assert "INVALID_ARGUMENT" in page


@pytest.mark.parametrize("priority", ["0", "100"])
def test_the_priority_range_ends_are_sent(
    browser: TestClient, job_svc: FakeJobService, priority: str
) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    csrf = sign_in(browser)
    browser.post("/jobs/j-1/priority", data={"csrf_token": csrf, "priority": priority})
    assert job_svc.jobs["j-1"].priority == int(priority)
