"""The queue's actions go through job-svc's commands; cancel asks first; a refusal is shown as given."""

from __future__ import annotations

from console_fakes import FakeJobService, a_job
from console_pages import sign_in
from starlette.testclient import TestClient

from modelyard.v1 import jobs_pb2
from modelyard_console.gateway import Refusal


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


def test_after_an_action_the_browser_goes_back_only_to_a_console_path(
    browser: TestClient, job_svc: FakeJobService
) -> None:
    job_svc.jobs["j-1"] = a_job("j-1")
    csrf = sign_in(browser)
    response = browser.post("/jobs/j-1/pause", data={"csrf_token": csrf, "back": "//evil.example/x"})
    assert response.headers["location"] == "/queue"


def test_a_refused_page_read_shows_the_refusal(browser: TestClient, job_svc: FakeJobService) -> None:
    job_svc.refuse["GetQueue"] = Refusal("PERMISSION_DENIED", "ada may not read the queue")
    sign_in(browser)
    response = browser.get("/queue")
    assert response.status_code == 403
    assert "PERMISSION_DENIED" in response.text
    assert "ada may not read the queue" in response.text
