"""Submitting a job from the form: CreateJob with yard's reading of the fields; an estimate first on
request; a refusal shown with the fields it names, the form keeping what was typed."""

from __future__ import annotations

from console_fakes import FakeJobService
from console_pages import sign_in
from starlette.testclient import TestClient

from modelyard.v1 import jobs_pb2
from modelyard_console.gateway import Refusal

FORM = {
    "name": "digits nightly",
    "ai_module": "digit-reader",
    "family": "image_classifier",
    "dataset_uri": "dataset://digits/3",
    "params": "epochs=3\nlr=0.01\n",
    "priority": "70",
    "description": "the nightly run",
}


def _created(job_svc: FakeJobService) -> list[jobs_pb2.CreateJobRequest]:
    return [request for rpc, request in job_svc.calls if rpc == "CreateJob"]


def test_the_form_creates_the_job_and_opens_its_page(browser: TestClient, job_svc: FakeJobService) -> None:
    csrf = sign_in(browser)
    response = browser.post("/jobs/new", data={**FORM, "csrf_token": csrf, "intent": "submit"})
    assert (response.status_code, response.headers["location"]) == (303, "/jobs/j-1")
    [request] = _created(job_svc)
    assert (request.name, request.ai_module, request.dataset_uri, request.priority) == (
        "digits nightly", "digit-reader", "dataset://digits/3", 70
    )  # fmt: skip
    assert dict(request.hyperparameters) == {"epochs": 3, "lr": 0.01}


def test_an_estimate_creates_nothing_and_keeps_the_form(browser: TestClient, job_svc: FakeJobService) -> None:
    csrf = sign_in(browser)
    page = browser.post("/jobs/new", data={**FORM, "csrf_token": csrf, "intent": "estimate"}).text
    assert "from 2 past runs on cpu" in page
    assert "2m 05s" in page
    assert 'value="digits nightly"' in page
    assert not _created(job_svc)


def test_a_line_that_is_no_assignment_is_refused_before_any_call(
    browser: TestClient, job_svc: FakeJobService
) -> None:
    csrf = sign_in(browser)
    response = browser.post("/jobs/new", data={**FORM, "params": "epochs", "csrf_token": csrf})
    assert response.status_code == 400
    assert "expected key=value" in response.text
    assert not _created(job_svc)


def test_a_refusal_names_its_fields_and_the_form_keeps_the_values(
    browser: TestClient, job_svc: FakeJobService
) -> None:
    job_svc.refuse["CreateJob"] = Refusal(
        "INVALID_ARGUMENT", "the job's request is invalid", (("hyperparameters.lr", "must be > 0"),)
    )
    csrf = sign_in(browser)
    response = browser.post("/jobs/new", data={**FORM, "csrf_token": csrf})
    assert response.status_code == 400
    assert "Refused — <code>INVALID_ARGUMENT</code>: the job&#39;s request is invalid" in response.text
    assert "<code>hyperparameters.lr</code>: must be &gt; 0" in response.text
    assert "epochs=3\nlr=0.01" in response.text
