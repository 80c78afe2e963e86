"""dataset-svc's views fold runs of labels and reviews in a few statements: same tables as one by one.

Real commands write a dataset's log (uploads, several annotators, a relabel after review, approvals,
a rejection, a version) into PostgreSQL; the views are then rebuilt twice from that log: once by a
projection that only has `apply` (one event at a time) and once by DatasetViews, which the runner
hands whole runs (`apply_batch`). Every table must come out identical, and right.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_blobs.local_blobs import LocalFolderBlobStore
from modelyard_blobs.staging import Staging
from modelyard_dataset.app.commands import AcceptedFile, DatasetCommands, NewDataset
from modelyard_dataset.domain.dataset import IncomingFile
from modelyard_dataset.domain.readiness import ReadinessPolicy
from modelyard_dataset.domain.versions import VersionRequest
from modelyard_dataset.projections.views import DatasetViews
from modelyard_events.caller import Caller
from modelyard_events.consumer.runner import SourceTopic
from modelyard_events.envelope import Actor
from modelyard_events.plans import plan_named
from modelyard_events.replay import rebuild_projection
from modelyard_events.schemas.datasets import DATASET_EVENTS, AnnotationData
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.one_by_one import OneByOne
from modelyard_events.testing.signing import TEST_KEYS
from tests.integration.dataset_client import digit_files

pytestmark = pytest.mark.integration
TABLES = {"datasets": "dataset_id", "samples": "sample_id", "versions": "dataset_id, version"}


def caller(subject: str) -> Caller:
    return Caller(Actor(subject=subject, roles=("super_admin",)), "corr-1")


async def write_history(store: PostgresEventStore, tmp_path: Path) -> tuple[str, str]:
    commands = DatasetCommands(
        store, LocalFolderBlobStore(tmp_path / "blobs"), lambda _: plan_named("enterprise"), ReadinessPolicy()
    )
    dataset = await commands.create(
        NewDataset("org-1", "digits", "digit-reader", "dev", "classification", ["0", "1", "2"]), caller("ops")
    )
    staging = Staging(tmp_path / "staging")
    files = []
    for name, data, _ in digit_files(4, [0, 1, 2]):
        writer = staging.new_file()
        writer.write(data)
        staged = writer.finish()
        files.append(AcceptedFile(IncomingFile(name, staged.sha256, staged.size_bytes, "image/png"), staged))
    outcome = await commands.upload(dataset.dataset_id, None, files, caller("ops"))
    ids = {file.filename: sample_id for file, sample_id, _ in outcome.plan.outcome}
    truth = [(ids[name], AnnotationData(class_name=cls)) for name, _, cls in digit_files(4, [0, 1, 2])]
    await commands.label(dataset.dataset_id, truth, caller("ann-1"))
    await commands.label(dataset.dataset_id, truth[:6], caller("ann-2"))
    await commands.label(dataset.dataset_id, [(truth[0][0], AnnotationData(class_name="2"))], caller("ann-3"))
    for index, (sample_id, _) in enumerate(truth[:-1]):
        sample = (await commands.load.sample(sample_id))[1]
        if index == 1:
            await commands.review(sample_id, False, "smudged", sample.version, caller("rev"))
        else:
            await commands.review(sample_id, True, "", sample.version, caller("rev"))
    relabeled = (await commands.load.sample(truth[2][0]))[1]  # approved, then relabeled: needs review again
    await commands.label(
        dataset.dataset_id, [(relabeled.sample_id, AnnotationData(class_name="1"))], caller("ann-2")
    )
    await commands.publish(
        dataset.dataset_id, VersionRequest(seed=1, train_fraction=0.8, val_fraction=0.1), caller("ops")
    )
    return dataset.dataset_id, truth[0][0]


async def rows(engine: AsyncEngine, schema: str, table: str, order: str) -> list[Any]:
    async with engine.connect() as conn:
        result = await conn.execute(text(f"SELECT * FROM {schema}.{table} ORDER BY {order}"))
        return [tuple(row) for row in result]


async def test_batched_views_equal_one_by_one_views(
    engine: AsyncEngine, store: PostgresEventStore, tmp_path: Path
) -> None:
    dataset_id, first_sample = await write_history(store, tmp_path)
    source = [SourceTopic("dataset", "unused-topic", store, TEST_KEYS)]
    one, batched = (f"views_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("one", "batch"))
    assert await rebuild_projection(engine, OneByOne(DatasetViews(one)), DATASET_EVENTS, source) == 0
    assert await rebuild_projection(engine, DatasetViews(batched), DATASET_EVENTS, source) == 0

    for table, order in TABLES.items():
        assert await rows(engine, one, table, order) == await rows(engine, batched, table, order), table
    async with engine.connect() as conn:
        counts = (
            await conn.execute(
                text(f"SELECT * FROM {batched}.datasets WHERE dataset_id = :id"), {"id": dataset_id}
            )
        ).one()
        disputed = (
            await conn.execute(
                text(
                    f"SELECT state, labels, consensus, agreement FROM {batched}.samples WHERE sample_id = :id"
                ),
                {"id": first_sample},
            )
        ).one()
    # 12 uploaded; 11 reviewed (one rejected); one approved sample relabeled since: labeled again.
    assert (counts.samples, counts.unlabeled, counts.labeled, counts.verified, counts.rejected) == (
        12,
        0,
        2,
        9,
        1,
    )
    # Three annotators, 2 of 3 say "0": approved with that consensus and agreement 2/3.
    assert disputed.state == "verified"
    assert sorted(disputed.labels) == ["ann-1", "ann-2", "ann-3"]
    assert disputed.consensus["class_name"] == "0"
    assert disputed.agreement == pytest.approx(2 / 3)
