"""A process that dies between an upload's charge and its SamplesAdded leaks no storage for good, and
a repeated upload id is charged once (in-memory store, local blobs, a clock the test moves)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_dataset_commands import CALLER, SMALL_PLAN, files

from modelyard_blobs.local_blobs import LocalFolderBlobStore
from modelyard_blobs.staging import Staging
from modelyard_dataset.app.commands import DatasetCommands, NewDataset
from modelyard_dataset.domain.readiness import ReadinessPolicy
from modelyard_dataset.domain.storage import ABANDONED_AFTER
from modelyard_events.envelope import CommandContext, DomainEvent, EventEnvelope
from modelyard_events.schemas.datasets import SamplesAdded
from modelyard_events.store.memory import InMemoryEventStore


class ProcessDies(BaseException):
    """The process is killed: nothing after this point runs (no release, no answer)."""


class DiesBeforeSamples(InMemoryEventStore):
    """A store through which the process dies at its next SamplesAdded while `dying` is set."""

    dying = False

    async def append(
        self,
        stream_type: str,
        stream_id: str,
        expected_version: int,
        events: Sequence[DomainEvent],
        context: CommandContext,
    ) -> list[EventEnvelope]:
        if self.dying:
            if any(isinstance(event, SamplesAdded) for event in events):
                raise ProcessDies
            if not any(type(event).__name__ == "DatasetStorageCharged" for event in events):
                raise ProcessDies  # the release after the failure never happens either
        return await super().append(stream_type, stream_id, expected_version, events, context)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Org:
    """One organization with two datasets; `restart` is a new process over the same store and blobs."""

    def __init__(self, tmp_path: Path) -> None:
        self.store, self.clock, self.tmp_path = DiesBeforeSamples(), Clock(), tmp_path
        self.staging = Staging(tmp_path / "staging")
        self.commands = self.restart()

    def restart(self) -> DatasetCommands:
        self.store.dying = False
        blobs = LocalFolderBlobStore(self.tmp_path / "blobs")
        return DatasetCommands(self.store, blobs, lambda _: SMALL_PLAN, ReadinessPolicy(), self.clock)

    async def dataset(self, name: str) -> str:
        new = NewDataset("acme", name, "pet-finder", "dev", "classification", ["cat", "dog"])
        return (await self.commands.create(new, CALLER)).dataset_id

    async def crash_uploading(self, dataset_id: str, upload_id: str, content: bytes) -> None:
        self.store.dying = True
        with pytest.raises(ProcessDies):
            await self.commands.upload(dataset_id, upload_id, files(self.staging, content), CALLER)
        self.commands = self.restart()

    async def used(self) -> int:
        return (await self.commands.load.ledger("acme")).total_bytes


async def test_a_retry_of_an_upload_that_died_before_its_samples_is_charged_once(tmp_path: Path) -> None:
    org = Org(tmp_path)
    pets = await org.dataset("pets")
    await org.crash_uploading(pets, "upl-1", b"a" * 300)
    assert await org.used() == 300  # charged, and no samples

    again = await org.commands.upload(pets, "upl-1", files(org.staging, b"a" * 300), CALLER)

    assert (again.plan.bytes_added, again.org_bytes_used, await org.used()) == (300, 300, 300)
    assert len((await org.commands.load.dataset(pets)).samples) == 1


async def test_the_next_upload_into_the_dataset_releases_a_charge_whose_upload_died(tmp_path: Path) -> None:
    org = Org(tmp_path)
    pets = await org.dataset("pets")
    await org.crash_uploading(pets, "upl-dead", b"a" * 300)

    await org.commands.upload(pets, "upl-2", files(org.staging, b"b" * 100), CALLER)  # moves the dataset
    await org.commands.upload(pets, "upl-3", files(org.staging, b"c" * 100), CALLER)  # reconciles

    assert await org.used() == 200
    ledger = await org.commands.load.ledger("acme")
    assert [c.upload_id for c in ledger.open_charges.values()] == ["upl-3"]


async def test_an_abandoned_charge_on_an_untouched_dataset_is_released_by_another_upload(
    tmp_path: Path,
) -> None:
    org = Org(tmp_path)
    pets, cars = await org.dataset("pets"), await org.dataset("cars")
    await org.crash_uploading(pets, "upl-dead", b"a" * 900)

    await org.commands.upload(cars, "upl-2", files(org.staging, b"b" * 50), CALLER)
    assert await org.used() == 950  # not abandoned yet: it might still be in flight
    org.clock.now += ABANDONED_AFTER * 2
    # 950 + 100 would pass the 1,000-byte limit had the dead upload's 900 stayed charged.
    await org.commands.upload(cars, "upl-3", files(org.staging, b"c" * 100), CALLER)

    assert await org.used() == 150
    fenced = [e.type for e in await org.store.read_stream(pets)]
    assert fenced[-1] == "DatasetUploadAbandoned"  # the dead upload's SamplesAdded can never land now
