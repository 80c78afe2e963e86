"""The Models pages: a version's next steps follow its status; a refused approval says why."""

from __future__ import annotations

from console_fakes import FakeRegistryService
from console_pages import sign_in
from starlette.testclient import TestClient

from modelyard.v1 import registry_pb2
from modelyard_console.gateway import Refusal


def _tested_version(registry_svc: FakeRegistryService) -> None:
    registry_svc.versions["v-1"] = registry_pb2.ModelVersion(
        version_id="v-1", ai_module="digit-reader", semantic_version="1.0.0",
        status=registry_pb2.MODEL_STATUS_TESTING, created_by="ada",
    )  # fmt: skip


def test_a_tested_version_offers_approve_and_reject_but_not_release(
    browser: TestClient, registry_svc: FakeRegistryService
) -> None:
    _tested_version(registry_svc)
    sign_in(browser)
    page = browser.get("/models/v-1").text
    assert 'action="/models/v-1/approve"' in page
    assert 'action="/models/v-1/reject"' in page
    assert 'action="/models/v-1/release"' not in page
    assert "digit-reader" in browser.get("/models").text


def test_a_refused_self_approval_shows_the_status_message_and_what_it_means(
    browser: TestClient, registry_svc: FakeRegistryService
) -> None:
    _tested_version(registry_svc)
    registry_svc.refuse["ApproveVersion"] = Refusal("PERMISSION_DENIED", "ada created training job j-1 …")
    csrf = sign_in(browser)
    response = browser.post("/models/v-1/approve", data={"csrf_token": csrf})
    assert response.headers["location"] == "/models/v-1"
    page = browser.get("/models/v-1").text
    assert "Refused — <code>PERMISSION_DENIED</code>: ada created training job j-1 …" in page
    assert "four eyes" in page
    assert registry_svc.versions["v-1"].status == registry_pb2.MODEL_STATUS_TESTING


def test_an_approval_by_another_admin_goes_through(
    browser: TestClient, registry_svc: FakeRegistryService
) -> None:
    _tested_version(registry_svc)
    csrf = sign_in(browser)
    browser.post("/models/v-1/approve", data={"csrf_token": csrf})
    assert [rpc for rpc, _ in registry_svc.calls] == ["ApproveVersion"]
    assert "Done — version v-1 approved" in browser.get("/models/v-1").text
