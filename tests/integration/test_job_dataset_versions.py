"""CreateJob trains only on a published, ready dataset version of the job's own organization."""

from __future__ import annotations

import grpc
import pytest

from modelyard.v1 import datasets_pb2, jobs_pb2
from tests.integration.dataset_client import DatasetClient, digit_files
from tests.integration.job_client import JobClient
from tests.integration.trainers import Trainers

pytestmark = pytest.mark.integration
CLASSES = ["0", "1"]


async def refusal(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_create_job_refuses_a_dataset_that_does_not_exist(jobs: JobClient, fresh_org: str) -> None:
    error = await refusal(jobs.create(fresh_org, "dataset://ds-00000000000000000000/1"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "ds-00000000000000000000" in (error.details() or "")


async def test_create_job_refuses_an_unpublished_version(
    jobs: JobClient, datasets: DatasetClient, fresh_org: str
) -> None:
    dataset = await datasets.create(fresh_org, CLASSES)
    error = await refusal(jobs.create(fresh_org, f"dataset://{dataset.dataset_id}/1"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "none is published yet" in (error.details() or "")


async def test_create_job_refuses_an_unready_version_saying_what_is_missing(
    jobs: JobClient, datasets: DatasetClient, fresh_org: str
) -> None:
    dataset = await datasets.build(fresh_org, digit_files(6, [0]) + digit_files(2, [1]), CLASSES)
    version = await datasets.stub.PublishVersion(
        datasets_pb2.PublishVersionRequest(dataset_id=dataset.dataset_id)
    )
    assert not version.readiness.ready
    error = await refusal(jobs.create(fresh_org, version.uri))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = error.details() or ""
    assert "not ready for training" in details
    assert "samples_per_class" in details
    assert "'1'" in details
    listed = await jobs.jobs.ListJobs(jobs_pb2.ListJobsRequest(org_id=fresh_org))
    assert list(listed.jobs) == []


async def test_create_job_refuses_another_organizations_version(
    jobs: JobClient, datasets: DatasetClient, fresh_org: str
) -> None:
    dataset = await datasets.build(fresh_org, digit_files(5, [0, 1]), CLASSES)
    version = await datasets.stub.PublishVersion(
        datasets_pb2.PublishVersionRequest(dataset_id=dataset.dataset_id)
    )
    assert version.readiness.ready, version.readiness
    error = await refusal(jobs.create("org-someone-else", version.uri))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not in your organization (org-someone-else)" in (error.details() or "")
    assert fresh_org not in (error.details() or "")  # the owner is not the caller's to learn


async def test_create_job_refuses_a_malformed_dataset_uri(jobs: JobClient, fresh_org: str) -> None:
    error = await refusal(jobs.create(fresh_org, "dataset://ds-x/latest"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "dataset://<dataset_id>/<version number>" in (error.details() or "")


async def test_a_job_trains_on_a_published_version_read_through_dataset_svc(
    jobs: JobClient, datasets: DatasetClient, trainers: Trainers, fresh_org: str
) -> None:
    classes = [str(d) for d in range(10)]
    dataset = await datasets.build(fresh_org, digit_files(12, range(10)), classes)
    version = await datasets.stub.PublishVersion(
        datasets_pb2.PublishVersionRequest(dataset_id=dataset.dataset_id, seed=3, family="image_classifier")
    )
    assert version.readiness.ready, version.readiness
    await trainers.start("t-version")
    job = await jobs.create(fresh_org, version.uri, epochs=3)
    done = await jobs.wait_for(job.job_id, jobs_pb2.JOB_STATE_COMPLETED)
    assert done.dataset_uri == version.uri
    assert done.epochs_done == 3
    assert done.last_epoch.val_accuracy > 0.3  # 120 digits, 3 epochs: well above chance (0.1)
    log = trainers.log("t-version")
    assert version.manifest_sha256[:12] in log or dataset.dataset_id in log
