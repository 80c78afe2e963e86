"""The upload use case with an in-memory store and a local blob store: quota, duplicates, failures."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from modelyard_blobs.local_blobs import LocalFolderBlobStore
from modelyard_blobs.staging import Staging
from modelyard_dataset.app.commands import AcceptedFile, DatasetCommands, NewDataset
from modelyard_dataset.domain.dataset import IncomingFile
from modelyard_dataset.domain.readiness import ReadinessPolicy
from modelyard_events.caller import Caller
from modelyard_events.domain_errors import QuotaExceeded
from modelyard_events.envelope import Actor, CommandContext, DomainEvent, EventEnvelope
from modelyard_events.plans import plan_named
from modelyard_events.schemas.datasets import SamplesAdded
from modelyard_events.store.memory import InMemoryEventStore

CALLER = Caller(Actor(subject="ops", roles=("super_admin",)), "corr-1")
LIMIT = 1000
SMALL_PLAN = replace(plan_named("enterprise"), dataset_bytes=LIMIT)


class SamplesAppendFails(InMemoryEventStore):
    """A store whose SamplesAdded appends fail (the database went away at the worst moment)."""

    async def append(
        self,
        stream_type: str,
        stream_id: str,
        expected_version: int,
        events: Sequence[DomainEvent],
        context: CommandContext,
    ) -> list[EventEnvelope]:
        if any(isinstance(event, SamplesAdded) for event in events):
            raise OSError("connection lost")
        return await super().append(stream_type, stream_id, expected_version, events, context)


def files(staging: Staging, *contents: bytes) -> list[AcceptedFile]:
    accepted = []
    for index, content in enumerate(contents):
        writer = staging.new_file()
        writer.write(content)
        staged = writer.finish()
        incoming = IncomingFile(
            f"f{index}-{os.urandom(2).hex()}.png", staged.sha256, staged.size_bytes, "image/png"
        )
        accepted.append(AcceptedFile(incoming, staged))
    return accepted


async def commands_with(store: InMemoryEventStore, tmp_path: Path) -> tuple[DatasetCommands, str]:
    commands = DatasetCommands(
        store, LocalFolderBlobStore(tmp_path / "blobs"), lambda _: SMALL_PLAN, ReadinessPolicy()
    )
    dataset = await commands.create(
        NewDataset("acme", "pets", "pet-finder", "dev", "classification", ["cat", "dog"]), CALLER
    )
    return commands, dataset.dataset_id


async def test_reusing_an_upload_id_still_charges_the_new_bytes(tmp_path: Path) -> None:
    commands, dataset_id = await commands_with(InMemoryEventStore(), tmp_path)
    staging = Staging(tmp_path / "staging")
    first = await commands.upload(dataset_id, "same-id", files(staging, b"a" * 600), CALLER)
    assert first.org_bytes_used == 600
    with pytest.raises(QuotaExceeded, match="adds 600 B"):
        await commands.upload(dataset_id, "same-id", files(staging, b"b" * 600), CALLER)
    again = await commands.upload(dataset_id, "same-id", files(staging, b"a" * 600), CALLER)
    assert (again.plan.bytes_added, again.org_bytes_used) == (0, 600)  # a duplicate costs nothing


async def test_a_charge_is_given_back_when_the_samples_cannot_be_recorded(tmp_path: Path) -> None:
    store = SamplesAppendFails()
    commands, dataset_id = await commands_with(store, tmp_path)
    with pytest.raises(OSError, match="connection lost"):
        await commands.upload(dataset_id, None, files(Staging(tmp_path / "staging"), b"c" * 700), CALLER)
    ledger = await commands.load.ledger("acme")
    assert ledger.total_bytes == 0
    assert [e.type for e in await store.read_all()][-2:] == [
        "DatasetStorageCharged",
        "DatasetStorageReleased",
    ]
    assert (await commands.load.dataset(dataset_id)).samples == {}
