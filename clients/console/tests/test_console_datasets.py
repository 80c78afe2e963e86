"""The Datasets pages: labeling and review progress, published versions, and why a working set is not
ready to publish."""

from __future__ import annotations

from console_fakes import FakeGateway
from console_pages import sign_in
from starlette.testclient import TestClient

from modelyard.v1 import datasets_pb2


def _digits(gateway: FakeGateway) -> None:
    gateway.dataset_service.datasets["d-1"] = datasets_pb2.Dataset(
        dataset_id="d-1", name="digits", ai_module="digit-reader", latest_version=2,
        status=datasets_pb2.DATASET_STATUS_ACTIVE,
        counts=datasets_pb2.DatasetCounts(samples=200, labeled=50, verified=90, rejected=10, unlabeled=50),
    )  # fmt: skip


def test_the_list_shows_how_far_labeling_and_review_have_come(
    browser: TestClient, gateway: FakeGateway
) -> None:
    _digits(gateway)
    sign_in(browser)
    page = browser.get("/datasets").text
    assert 'value="75.0" aria-label="Labeled share of digits"' in page  # 150 of 200 labeled or reviewed
    assert 'value="50.0" aria-label="Reviewed share of digits"' in page  # 100 of 200 reviewed


def test_a_dataset_says_why_it_is_not_ready_and_lists_its_versions(
    browser: TestClient, gateway: FakeGateway
) -> None:
    _digits(gateway)
    gateway.dataset_service.readiness = datasets_pb2.ReadinessReport(
        ready=False,
        checks=[
            datasets_pb2.ReadinessCheck(name="size_within_plan", passed=True, detail="1 MB of 10 GB"),
            datasets_pb2.ReadinessCheck(name="samples_per_class", passed=False, detail="class 7 has 2 of 4"),
        ],
    )
    for n in (1, 2):
        gateway.dataset_service.versions[n] = datasets_pb2.DatasetVersion(
            dataset_id="d-1", version=n, uri=f"dataset://d-1/{n}"
        )
    sign_in(browser)
    page = browser.get("/datasets/d-1").text
    assert 'data-state="not ready"' in page
    assert page.index("samples_per_class") < page.index("size_within_plan")  # the failed check first
    assert "class 7 has 2 of 4" in page
    assert page.index("dataset://d-1/2") < page.index("dataset://d-1/1")
