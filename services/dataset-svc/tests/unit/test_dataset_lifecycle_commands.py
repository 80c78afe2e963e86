"""The lifecycle's use cases over an in-memory store and a local blob folder: what a deletion appends,
which files it removes, the bytes it gives back once, and the loader's incremental reads."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from modelyard.v1 import datasets_pb2
from modelyard_blobs.local_blobs import LocalFolderBlobStore
from modelyard_blobs.staging import Staging
from modelyard_dataset.app.commands import AcceptedFile, DatasetCommands, NewDataset
from modelyard_dataset.app.lifecycle import DatasetLifecycle
from modelyard_dataset.app.loading import DatasetLoader
from modelyard_dataset.domain.dataset import IncomingFile
from modelyard_dataset.domain.readiness import ReadinessPolicy
from modelyard_dataset.domain.uses import VersionUser
from modelyard_dataset.domain.versions import VersionRequest
from modelyard_dataset.grpc_api import DatasetServicer
from modelyard_events.caller import Caller
from modelyard_events.domain_errors import IllegalTransition, NotFound
from modelyard_events.envelope import Actor
from modelyard_events.plans import plan_named
from modelyard_events.schemas.datasets import AnnotationData
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_grpc import Principal, Role, acting_as

CALLER = Caller(Actor(subject="ops", roles=("super_admin",)), "corr-1")
PLAN = replace(plan_named("enterprise"), dataset_bytes=10_000)


@dataclass
class ViewsSay:
    """What the views would answer (the real ones are read in the integration tests)."""

    used: dict[int, list[VersionUser]] = field(default_factory=dict)
    shared: set[str] = field(default_factory=set)  # files other samples hold

    async def uses(self, dataset_id: str) -> dict[int, list[VersionUser]]:
        return self.used

    async def held_elsewhere(
        self, sha256s: Sequence[str], dataset_id: str, sample_ids: Sequence[str]
    ) -> set[str]:
        return self.shared & set(sha256s)


@dataclass
class World:
    commands: DatasetCommands
    lifecycle: DatasetLifecycle
    blobs: LocalFolderBlobStore
    views: ViewsSay
    staging: Staging
    dataset_id: str

    def files(self, *contents: bytes) -> list[AcceptedFile]:
        accepted = []
        for content in contents:
            writer = self.staging.new_file()
            writer.write(content)
            staged = writer.finish()
            name = f"{os.urandom(3).hex()}.png"
            accepted.append(
                AcceptedFile(IncomingFile(name, staged.sha256, staged.size_bytes, "image/png"), staged)
            )
        return accepted


@pytest.fixture
async def world(tmp_path: Path) -> World:
    store, blobs, views = InMemoryEventStore(), LocalFolderBlobStore(tmp_path / "blobs"), ViewsSay()
    commands = DatasetCommands(store, blobs, lambda _: PLAN, ReadinessPolicy())
    dataset = await commands.create(
        NewDataset("acme", "pets", "pet-finder", "dev", "classification", ["cat", "dog"]), CALLER
    )
    lifecycle = DatasetLifecycle(store, blobs, commands.load, views)
    return World(commands, lifecycle, blobs, views, Staging(tmp_path / "staging"), dataset.dataset_id)


async def test_a_deleted_sample_loses_its_file_and_its_bytes_once(world: World) -> None:
    uploaded = await world.commands.upload(
        world.dataset_id, None, world.files(b"a" * 300, b"b" * 200), CALLER
    )
    doomed, kept = uploaded.plan.added
    assert uploaded.org_bytes_used == 500

    done = await world.lifecycle.delete_sample(doomed.sample_id, "blurry", CALLER)

    assert (done.samples, done.bytes_freed, done.org_bytes_used) == (1, 300, 200)
    assert not await world.blobs.exists(doomed.sha256)
    assert await world.blobs.exists(kept.sha256)
    again = await world.lifecycle.delete_sample(doomed.sample_id, "blurry", CALLER)
    assert again.org_bytes_used == 200  # given back once
    assert (await world.commands.room_left("acme")).left_bytes == 10_000 - 200


async def test_a_file_another_sample_holds_stays(world: World) -> None:
    uploaded = await world.commands.upload(world.dataset_id, None, world.files(b"c" * 300), CALLER)
    [sample] = uploaded.plan.added
    world.views.shared = {sample.sha256}
    await world.lifecycle.delete_sample(sample.sample_id, "dup", CALLER)
    assert await world.blobs.exists(sample.sha256)


async def test_a_use_of_a_version_the_dataset_never_published_blocks_nothing(world: World) -> None:
    await world.commands.upload(world.dataset_id, None, world.files(b"d" * 100), CALLER)
    before = await world.commands.load.dataset(world.dataset_id)
    world.views.used = {1: [VersionUser("job", "job-7")]}
    # Version 1 is not published here, so a use of it names nothing this dataset holds: deletable.
    done = await world.lifecycle.delete_dataset(world.dataset_id, "cleanup", CALLER)
    assert (done.samples, done.bytes_freed, done.org_bytes_used) == (1, 100, 0)
    with pytest.raises(NotFound, match="deleted by ops: cleanup"):
        await world.commands.load.dataset(world.dataset_id)
    assert before.status == "draft"


async def test_a_sample_in_a_used_version_stays_and_one_outside_it_goes(world: World) -> None:
    first = await world.commands.upload(world.dataset_id, None, world.files(b"i" * 40), CALLER)
    [frozen] = first.plan.added
    await world.commands.label(
        world.dataset_id, [(frozen.sample_id, AnnotationData(class_name="cat"))], CALLER
    )
    await world.commands.review(frozen.sample_id, True, "", 1, CALLER)
    await world.commands.publish(
        world.dataset_id, VersionRequest(seed=1, train_fraction=0.8, val_fraction=0.1), CALLER
    )
    later = await world.commands.upload(world.dataset_id, None, world.files(b"j" * 50), CALLER)
    world.views.used = {1: [VersionUser("model", "mv-3"), VersionUser("job", "job-7")]}

    with pytest.raises(IllegalTransition, match="in version 1, used by job job-7 and model version mv-3"):
        await world.lifecycle.delete_sample(frozen.sample_id, "blurry", CALLER)
    with pytest.raises(IllegalTransition, match="has version 1, used by job job-7"):
        await world.lifecycle.delete_dataset(world.dataset_id, "cleanup", CALLER)
    assert await world.blobs.exists(frozen.sha256)
    done = await world.lifecycle.delete_sample(later.plan.added[0].sample_id, "not in any version", CALLER)
    assert done.bytes_freed == 50


async def test_archive_refuses_uploads_and_unarchive_allows_them_again(world: World) -> None:
    [sample] = (
        await world.commands.upload(world.dataset_id, None, world.files(b"k" * 10), CALLER)
    ).plan.added
    await world.commands.label(
        world.dataset_id, [(sample.sample_id, AnnotationData(class_name="cat"))], CALLER
    )
    archived = await world.lifecycle.archive(world.dataset_id, "season over", CALLER)
    assert archived.status == "archived"
    refused = [
        world.commands.upload(world.dataset_id, None, world.files(b"e" * 10), CALLER),
        world.commands.label(
            world.dataset_id, [(sample.sample_id, AnnotationData(class_name="dog"))], CALLER
        ),
        world.commands.review(sample.sample_id, True, "", 1, CALLER),
        world.commands.publish(
            world.dataset_id, VersionRequest(seed=1, train_fraction=0.8, val_fraction=0.1), CALLER
        ),
        world.lifecycle.describe(world.dataset_id, "new words", CALLER),
        world.lifecycle.delete_sample(sample.sample_id, "x", CALLER),
    ]
    for attempt in refused:
        with pytest.raises(IllegalTransition, match=f"dataset {world.dataset_id} \\(pets\\) is archived"):
            await attempt
    assert (await world.lifecycle.unarchive(world.dataset_id, "back", CALLER)).status == "draft"
    assert (await world.commands.upload(world.dataset_id, None, world.files(b"e" * 10), CALLER)).plan.added


async def test_the_loader_reads_only_new_events_and_agrees_with_a_fresh_rebuild(world: World) -> None:
    loader = world.commands.load
    await world.commands.upload(world.dataset_id, None, world.files(b"f" * 10, b"g" * 20), CALLER)
    first = await loader.dataset(world.dataset_id)
    await world.lifecycle.describe(world.dataset_id, "camera 4", CALLER)
    await world.lifecycle.delete_sample(next(iter(first.samples)), "x", CALLER)
    await world.commands.upload(world.dataset_id, None, world.files(b"h" * 30), CALLER)
    cached = await loader.dataset(world.dataset_id)
    fresh = await DatasetLoader(loader.store).dataset(world.dataset_id)
    assert cached == fresh
    assert (cached.description, len(cached.samples), len(cached.deleted_samples)) == ("camera 4", 2, 1)


async def test_a_deleted_sample_of_an_unused_version_is_left_out_of_its_downloads(world: World) -> None:
    uploaded = await world.commands.upload(world.dataset_id, None, world.files(b"m" * 30, b"n" * 40), CALLER)
    first, second = uploaded.plan.added
    for sample in (first, second):
        await world.commands.label(
            world.dataset_id, [(sample.sample_id, AnnotationData(class_name="cat"))], CALLER
        )
        await world.commands.review(sample.sample_id, True, "", 1, CALLER)
    await world.commands.publish(
        world.dataset_id, VersionRequest(seed=1, train_fraction=0.8, val_fraction=0.1), CALLER
    )
    await world.lifecycle.delete_sample(first.sample_id, "a face is visible", CALLER)
    servicer = DatasetServicer(world.commands, None, world.blobs, (None, None), None, None, world.lifecycle)  # type: ignore[arg-type]
    request = datasets_pb2.DownloadSamplesRequest(dataset_id=world.dataset_id, version=1)

    with acting_as(Principal(subject="trainer-a", org_id=None, roles=frozenset({Role.TRAINER}))):
        chunks = [chunk async for chunk in servicer.DownloadSamples(request, None)]  # type: ignore[arg-type]

    assert [c.sha256 for c in chunks if c.sha256] == [second.sha256]
