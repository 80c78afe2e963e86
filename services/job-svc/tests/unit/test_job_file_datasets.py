"""MODELYARD_ALLOW_FILE_DATASETS: off by default, so only development (which turns it on) trains on
local files."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from modelyard_events.caller import Caller
from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.envelope import Actor
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_grpc import status_for
from modelyard_grpc.testing import TEST_TOKEN_PUBLIC_KEYS
from modelyard_job.app import JobCommands, NewJob
from modelyard_job.app.dataset_gate import VersionFacts
from modelyard_job.config import JobSettings
from modelyard_job.domain import JobState, plan_named

ALICE = Caller(Actor(subject="alice", roles=("super_admin",)), "corr-1")
FILE_URI = "file:///data/digits.npz"


class ReadyVersions:
    async def version(self, dataset_id: str, version: int) -> VersionFacts:
        return VersionFacts(dataset_id, version, "acme", "classification", ready=True, failed_checks=[])


def commands(store: InMemoryEventStore, **allow: bool) -> JobCommands:
    plan = plan_named("enterprise")
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    return JobCommands(store, lambda org: plan, lambda: now, ReadyVersions(), **allow)


def new_job(dataset_uri: str) -> NewJob:
    return NewJob("acme", "digits", "digit-reader", "image_classifier", dataset_uri, {"epochs": 2}, 50)


async def test_a_file_dataset_is_refused_where_files_are_not_allowed_saying_what_to_use() -> None:
    store = InMemoryEventStore()
    with pytest.raises(InvalidArgument) as refused:
        await commands(store, allow_file_datasets=False).create(new_job(FILE_URI), ALICE)

    assert refused.value.field == "dataset_uri"
    assert (
        "publish a dataset version and use dataset://<dataset_id>/<version number>" in refused.value.message
    )
    assert status_for(refused.value).code is grpc.StatusCode.INVALID_ARGUMENT
    assert await store.read_all() == []


async def test_a_published_version_is_still_accepted_where_files_are_not_allowed() -> None:
    job = await commands(InMemoryEventStore(), allow_file_datasets=False).create(
        new_job("dataset://ds-1/2"), ALICE
    )
    assert job.state is JobState.QUEUED


async def test_a_file_dataset_is_refused_by_default() -> None:
    store = InMemoryEventStore()
    with pytest.raises(InvalidArgument, match="not local files"):
        await commands(store).create(new_job(FILE_URI), ALICE)
    assert await store.read_all() == []


async def test_a_file_dataset_is_accepted_where_files_are_allowed() -> None:
    job = await commands(InMemoryEventStore(), allow_file_datasets=True).create(new_job(FILE_URI), ALICE)
    assert job.state is JobState.QUEUED


@pytest.mark.parametrize(("value", "allowed"), [(None, False), ("false", False), ("true", True)])
def test_the_setting_comes_from_modelyard_allow_file_datasets(
    monkeypatch: pytest.MonkeyPatch, value: str | None, allowed: bool
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/modelyard")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    monkeypatch.setenv("MODELYARD_TOKEN_PUBLIC_KEYS", TEST_TOKEN_PUBLIC_KEYS)
    if value is None:
        monkeypatch.delenv("MODELYARD_ALLOW_FILE_DATASETS", raising=False)
    else:
        monkeypatch.setenv("MODELYARD_ALLOW_FILE_DATASETS", value)
    assert JobSettings().allow_file_datasets is allowed
