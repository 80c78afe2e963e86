"""The queue's actions go through job-svc's commands; cancel asks first; a refusal is shown as given."""

from __future__ import annotations

import pytest
from console_fakes import FakeJobService, a_job
from console_pages import sign_in
from starlette.testclient import TestClient

from modelyard.v1 import jobs_pb2
from modelyard_console.gateway import Refusal
from modelyard_console.routes.job_actions import back_to


def test_cancel_asks_first_and_cancels_only_on_the_confirmation(
    browser: TestClient, job_svc: FakeJobService
) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    csrf = sign_in(browser)
    confirm = browser.get("/jobs/j-1/cancel?back=/queue")
    assert confirm.status_code == 200
    assert "Yes, cancel the job" in confirm.text
    assert job_svc.jobs["j-1"].state == jobs_pb2.JOB_STATE_QUEUED
    done = browser.post(
        "/jobs/j-1/cancel", data={"csrf_token": csrf, "reason": "wrong data", "back": "/queue"}
    )
    assert (done.status_code, done.headers["location"]) == (303, "/queue")
    cancel = [request for rpc, request in job_svc.calls if rpc == "CancelJob"]
    assert [(c.job_id, c.reason) for c in cancel] == [("j-1", "wrong data")]
    assert "Done — digits j-1 (j-1) cancelled" in browser.get("/queue").text


def test_a_refusal_is_shown_with_its_grpc_status_and_message(
    browser: TestClient, job_svc: FakeJobService
) -> None:
    job_svc.jobs["j-1"] = a_job("j-1", state=jobs_pb2.JOB_STATE_COMPLETED)
    job_svc.refuse["PauseJob"] = Refusal(
        "FAILED_PRECONDITION", "job j-1 is completed; only queued or running"
    )
    csrf = sign_in(browser)
    browser.post("/jobs/j-1/pause", data={"csrf_token": csrf, "back": "/jobs/j-1"})
    page = browser.get("/jobs/j-1").text
    assert "Refused — <code>FAILED_PRECONDITION</code>: job j-1 is completed; only queued or running" in page


def test_priority_is_set_through_set_priority(browser: TestClient, job_svc: FakeJobService) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    csrf = sign_in(browser)
    browser.post("/jobs/j-1/priority", data={"csrf_token": csrf, "priority": "90"})
    assert job_svc.jobs["j-1"].priority == 90


@pytest.mark.parametrize(
    "back",
    [
        "//evil.example/x",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r/evil.example",
        "/\\evil.example",
        "/x\\..\\\\evil.example",
        "https://evil.example/",
        "https:/evil.example",
        "javascript:alert(1)",
        "/\u00e9vil",
        "/ /evil.example",
        "",
    ],
)
def test_after_an_action_the_browser_goes_back_only_to_a_console_path(
    browser: TestClient, job_svc: FakeJobService, back: str
) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    csrf = sign_in(browser)
    response = browser.post("/jobs/j-1/pause", data={"csrf_token": csrf, "back": back})
    assert response.headers["location"] == "/queue"


@pytest.mark.parametrize("back", ["/\t/evil.example", "/\n/evil.example", "/\\evil.example", "https:evil"])
def test_back_to_refuses_what_a_browser_would_read_as_another_site(back: str) -> None:
    assert back_to(back) == "/queue"


@pytest.mark.parametrize("back", ["/queue", "/jobs/j-1?tab=events", "/history?state=failed&page=2"])
def test_back_to_keeps_a_path_on_the_console(back: str) -> None:
    assert back_to(back) == back


def test_the_cancel_confirmation_links_back_only_to_a_console_path(
    browser: TestClient, job_svc: FakeJobService
) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    sign_in(browser)
    page = browser.get("/jobs/j-1/cancel", params={"back": "/\t/evil.example"})
    assert 'href="/jobs/j-1"' in page.text
    assert "evil.example" not in page.text


def test_a_refused_page_read_shows_the_refusal(browser: TestClient, job_svc: FakeJobService) -> None:
    job_svc.refuse["GetQueue"] = Refusal("PERMISSION_DENIED", "ada may not read the queue")
    sign_in(browser)
    response = browser.get("/queue")
    assert response.status_code == 403
    assert "PERMISSION_DENIED" in response.text
    assert "ada may not read the queue" in response.text
