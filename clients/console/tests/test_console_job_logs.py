"""The job page's training log: lines followed live into the panel (escaped, resumable by cursor),
and every line as a capped text download."""

from __future__ import annotations

import csv
import io
from typing import Any

import anyio
import pytest
from console_fakes import FakeGateway, FakeJobService, a_job, log_lines, token_for
from console_pages import sign_in
from starlette.testclient import TestClient

from modelyard.v1 import events_pb2
from modelyard_console.app import build_app
from modelyard_console.gateway import Refusal
from modelyard_console.routes import job_logs
from modelyard_console.sessions import COOKIE_NAME, SessionStore
from modelyard_console.settings import ConsoleSettings
from modelyard_console.token_claims import user_of


async def _first_event(gateway: FakeGateway, path: str, last_event_id: str = "") -> str:
    """The first event the stream at `path` sends to a signed-in browser (which then signs out)."""
    app = build_app(ConsoleSettings(refresh_s=0.02), gateway=gateway)  # type: ignore[arg-type]
    sessions: SessionStore = app.state.console.sessions
    token = token_for()
    session = sessions.new_signed_in(token, user_of(token))
    bodies: list[str] = []

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message.get("body"):
            bodies.append(message["body"].decode())
            sessions.drop(session.session_id)

    headers = [(b"host", b"testserver"), (b"cookie", f"{COOKIE_NAME}={session.session_id}".encode())]
    if last_event_id:
        headers.append((b"last-event-id", last_event_id.encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": headers, "client": ("127.0.0.1", 4000), "server": ("testserver", 80),
    }  # fmt: skip
    with anyio.fail_after(5):
        await app(scope, receive, send)
    return bodies[0]


def test_the_job_page_has_a_log_panel_fed_by_the_log_stream(
    browser: TestClient, job_svc: FakeJobService
) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    sign_in(browser)
    page = browser.get("/jobs/j-1").text
    assert 'sse-connect="/live/jobs/j-1/logs"' in page
    assert 'sse-swap="logs" hx-swap="beforeend" data-max-lines="2000"' in page
    assert 'href="/jobs/j-1/logs.txt"' in page


def test_the_log_stream_sends_the_lines_escaped_with_level_attempt_and_cursor(gateway: FakeGateway) -> None:
    gateway.service.log_lines["j-1"] = log_lines(2, "<script>alert({n})</script>")
    event = anyio.run(_first_event, gateway, "/live/jobs/j-1/logs")
    assert event.startswith("event: logs\nid: 2\n")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in event
    assert "<script>" not in event
    assert ">INFO<" in event
    assert "#1" in event


def test_a_reconnecting_browser_gets_only_the_lines_after_its_last_event(gateway: FakeGateway) -> None:
    gateway.service.log_lines["j-1"] = log_lines(3)
    event = anyio.run(_first_event, gateway, "/live/jobs/j-1/logs", "2")
    follow = [request for rpc, request in gateway.service.calls if rpc == "FollowJobLogs"]
    assert follow[0].after_cursor == 2
    assert "epoch 3 done" in event
    assert "epoch 2 done" not in event


def test_a_last_event_id_that_is_no_cursor_reads_from_the_first_line(gateway: FakeGateway) -> None:
    gateway.service.log_lines["j-1"] = log_lines(1)
    event = anyio.run(_first_event, gateway, "/live/jobs/j-1/logs", "9" * 40)
    assert "epoch 1 done" in event


def test_a_refused_log_stream_shows_the_refusal(gateway: FakeGateway) -> None:
    gateway.service.refuse["FollowJobLogs"] = Refusal("PERMISSION_DENIED", "not your organization's job")
    event = anyio.run(_first_event, gateway, "/live/jobs/j-1/logs")
    assert "PERMISSION_DENIED" in event
    assert "not your organization&#39;s job" in event


def test_the_download_pages_through_every_line(browser: TestClient, job_svc: FakeJobService) -> None:
    job_svc.log_lines["j-1"] = log_lines(2_500)
    sign_in(browser)
    response = browser.get("/jobs/j-1/logs.txt")
    assert response.headers["content-type"].startswith("text/plain")
    assert 'filename="j-1-logs.txt"' in response.headers["content-disposition"]
    lines = response.text.splitlines()
    assert len(lines) == 2_500
    assert lines[-1].endswith("INFO    #1 epoch 2500 done")
    assert len([rpc for rpc, _ in job_svc.calls if rpc == "GetJobLogs"]) == 3


def test_the_download_stops_at_its_cap_and_says_so(
    browser: TestClient, job_svc: FakeJobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_logs, "MAX_LINES_DOWNLOADED", 1_500)
    job_svc.log_lines["j-1"] = log_lines(2_500)
    sign_in(browser)
    lines = browser.get("/jobs/j-1/logs.txt").text.splitlines()
    assert len(lines) == 1_501
    assert lines[-1].startswith("[stopped at 1,500 lines")


def test_a_refused_download_is_a_refusal_page(browser: TestClient, job_svc: FakeJobService) -> None:
    job_svc.refuse["GetJobLogs"] = Refusal("NOT_FOUND", "no job j-9")
    sign_in(browser)
    response = browser.get("/jobs/j-9/logs.txt")
    assert response.status_code == 404
    assert "no job j-9" in response.text


def test_the_lines_download_as_csv_with_formulas_made_text(
    browser: TestClient, job_svc: FakeJobService
) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    job_svc.log_lines["j-1"] = [
        *log_lines(1_200),
        *log_lines(1, message='=HYPERLINK("http://evil","x"), then "quoted"\nand a second line', start=1_201),
    ]
    sign_in(browser)
    assert 'href="/jobs/j-1/logs.csv"' in browser.get("/jobs/j-1").text
    response = browser.get("/jobs/j-1/logs.csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="j-1-logs.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1_201
    assert rows[0] == {
        "attempt": "1", "at": "", "level": "INFO", "logger": "trainer", "trainer_id": "t-1",
        "dispatch_id": "", "message": "epoch 1 done",
    }  # fmt: skip
    assert rows[-1]["message"] == '\'=HYPERLINK("http://evil","x"), then "quoted"\nand a second line'


def test_a_capped_csv_says_so_in_a_row_of_its_own(
    browser: TestClient, job_svc: FakeJobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_logs, "MAX_LINES_DOWNLOADED", 1_500)
    job_svc.log_lines["j-1"] = log_lines(2_500)
    sign_in(browser)
    rows = list(csv.DictReader(io.StringIO(browser.get("/jobs/j-1/logs.csv").text)))
    assert len(rows) == 1_501
    assert rows[-1]["message"].startswith("stopped at 1,500 lines")


def test_the_events_timeline_downloads_whole_as_csv(browser: TestClient, job_svc: FakeJobService) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    job_svc.events["j-1"] = [
        events_pb2.EventEnvelope(
            position=n, type=kind, schema_version=1, org_id="acme", correlation_id="c-1",
            actor=events_pb2.Actor(subject="-dev", roles=["operator"]), data_json='{"job_id":"j-1"}',
        )
        for n, kind in enumerate(["JobCreated", *["JobProgressed"] * 60, "JobCompleted"], start=1)
    ]  # fmt: skip
    sign_in(browser)
    assert 'href="/jobs/j-1/events.csv"' in browser.get("/jobs/j-1").text
    response = browser.get("/jobs/j-1/events.csv")
    assert 'filename="j-1-events.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["type"] for r in rows[:2]] == ["JobCreated", "JobProgressed"]
    assert len(rows) == 62  # the page lists the last 50; the export has them all
    assert rows[0]["actor"] == "'-dev"  # a leading minus would be a formula
    assert rows[0]["data_json"] == '{"job_id":"j-1"}'


def test_a_refused_events_export_is_a_refusal_page(browser: TestClient, job_svc: FakeJobService) -> None:
    job_svc.refuse["GetJobEvents"] = Refusal("PERMISSION_DENIED", "not your organization's job")
    sign_in(browser)
    response = browser.get("/jobs/j-9/events.csv")
    assert response.status_code == 403
    assert "not your organization" in response.text


@pytest.mark.parametrize("path", ["/jobs/j-1/logs.csv", "/jobs/j-1/events.csv", "/jobs/j-1/logs.txt"])
def test_a_signed_out_browser_gets_no_export_and_nothing_is_asked(
    browser: TestClient, job_svc: FakeJobService, path: str
) -> None:
    response = browser.get(path, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/signin")
    assert job_svc.calls == []
