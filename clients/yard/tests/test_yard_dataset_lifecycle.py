"""`yard datasets describe | archive | unarchive | delete | delete-sample` against a fake dataset-svc."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from dataset_fakes import FakeDatasetService, FakeDatasetSvc, dataset
from fake_loops import loop_thread, run_on
from grpc import aio
from typing_extensions import override
from yard_runner import Yard, runner_for

from modelyard.v1 import datasets_pb2, datasets_pb2_grpc
from modelyard_events.domain_errors import IllegalTransition
from modelyard_grpc import status_for

DELETED = datasets_pb2.DeletionResponse(
    dataset_id="ds-1", samples_deleted=1, bytes_freed=300, org_bytes_used=700
)


class LifecycleService(FakeDatasetService):
    """The fake DatasetService with the lifecycle RPCs (each recorded, refusable like the others)."""

    @override
    async def UpdateDataset(self, request: Any, context: Any) -> datasets_pb2.Dataset:
        await self.fake.record("UpdateDataset", request, context)
        return dataset("ds-1", description=request.description, status=datasets_pb2.DATASET_STATUS_ACTIVE)

    @override
    async def ArchiveDataset(self, request: Any, context: Any) -> datasets_pb2.Dataset:
        await self.fake.record("ArchiveDataset", request, context)
        return dataset("ds-1", status=datasets_pb2.DATASET_STATUS_ARCHIVED)

    @override
    async def UnarchiveDataset(self, request: Any, context: Any) -> datasets_pb2.Dataset:
        await self.fake.record("UnarchiveDataset", request, context)
        return dataset("ds-1", status=datasets_pb2.DATASET_STATUS_DRAFT)

    @override
    async def DeleteSample(self, request: Any, context: Any) -> datasets_pb2.DeletionResponse:
        await self.fake.record("DeleteSample", request, context)
        return DELETED

    @override
    async def DeleteDataset(self, request: Any, context: Any) -> datasets_pb2.DeletionResponse:
        await self.fake.record("DeleteDataset", request, context)
        return datasets_pb2.DeletionResponse(dataset_id="ds-1", samples_deleted=3, bytes_freed=900)


@pytest.fixture
def lifecycle_svc() -> Iterator[FakeDatasetSvc]:
    fake = FakeDatasetSvc()
    with loop_thread("fake-dataset-lifecycle") as loop:

        async def start() -> aio.Server:
            server = aio.server()
            datasets_pb2_grpc.add_DatasetServiceServicer_to_server(LifecycleService(fake), server)
            fake.target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
            await server.start()
            return server

        server = run_on(loop, start())
        try:
            yield fake
        finally:
            run_on(loop, server.stop(grace=None))


@pytest.fixture
def lifecycle_yard(lifecycle_svc: FakeDatasetSvc) -> Yard:
    return runner_for({"MODELYARD_DATASET_SVC_TARGET": lifecycle_svc.target})


def test_archive_sends_the_reason_and_shows_the_status(
    lifecycle_yard: Yard, lifecycle_svc: FakeDatasetSvc
) -> None:
    result = lifecycle_yard("datasets", "archive", "ds-1", "--reason", "season over")
    assert result.exit_code == 0, result.output
    (request,) = lifecycle_svc.requests("ArchiveDataset")
    assert (request.dataset_id, request.reason) == ("ds-1", "season over")
    assert "archived" in result.stdout


def test_unarchive_and_describe(lifecycle_yard: Yard, lifecycle_svc: FakeDatasetSvc) -> None:
    assert lifecycle_yard("datasets", "unarchive", "ds-1", "--reason", "needed").exit_code == 0
    result = lifecycle_yard("datasets", "describe", "ds-1", "digits from camera 4", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["description"] == "digits from camera 4"
    assert [c.method for c in lifecycle_svc.calls] == ["UnarchiveDataset", "UpdateDataset"]


def test_a_change_without_a_reason_is_refused_before_any_call(
    lifecycle_yard: Yard, lifecycle_svc: FakeDatasetSvc
) -> None:
    for command in (["archive", "ds-1"], ["delete", "ds-1", "--yes"], ["delete-sample", "ds-1:s", "--yes"]):
        result = lifecycle_yard("datasets", *command)
        assert result.exit_code == 2
        assert "--reason is required" in result.stderr
    assert lifecycle_svc.calls == []


def test_delete_asks_first_and_deletes_nothing_when_told_no(
    lifecycle_yard: Yard, lifecycle_svc: FakeDatasetSvc
) -> None:
    result = lifecycle_yard("datasets", "delete-sample", "ds-1:s", "--reason", "blurry", input="n\n")
    assert result.exit_code == 1
    assert "Delete sample ds-1:s and its file?" in result.stderr
    assert "nothing was deleted" in result.stderr
    assert lifecycle_svc.calls == []


def test_delete_sample_when_confirmed_says_what_was_given_back(
    lifecycle_yard: Yard, lifecycle_svc: FakeDatasetSvc
) -> None:
    result = lifecycle_yard("datasets", "delete-sample", "ds-1:s", "--reason", "blurry", input="y\n")
    assert result.exit_code == 0, result.output
    (request,) = lifecycle_svc.requests("DeleteSample")
    assert (request.sample_id, request.reason) == ("ds-1:s", "blurry")
    assert "deleted 1 sample(s) of ds-1; 300 bytes given back" in result.stdout


def test_delete_with_yes_asks_nothing(lifecycle_yard: Yard, lifecycle_svc: FakeDatasetSvc) -> None:
    result = lifecycle_yard("datasets", "delete", "ds-1", "--reason", "mistake", "--yes", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["samples_deleted"], shown["bytes_freed"]) == ("3", "900")  # int64 as JSON strings
    assert "Delete" not in result.stderr


def test_a_refused_deletion_prints_the_service_reason(
    lifecycle_yard: Yard, lifecycle_svc: FakeDatasetSvc
) -> None:
    lifecycle_svc.refusals["DeleteDataset"] = status_for(
        IllegalTransition("dataset ds-1 has version 1, used by job job-7")
    )
    result = lifecycle_yard("datasets", "delete", "ds-1", "--reason", "mistake", "--yes")
    assert result.exit_code == 2
    assert "FAILED_PRECONDITION" in result.stderr
    assert "version 1, used by job job-7" in result.stderr
