"""The dataset lifecycle on the real stack: archive, deletions refused for used versions, bytes and
files given back, and the abuse cases (wrong role, another organization, oversized reason, unknown
ids, a forged use event on the broker)."""

from __future__ import annotations

import io
import json
import uuid

import grpc
import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard.v1 import datasets_pb2
from modelyard_blobs.local_blobs import LocalFolderBlobStore
from modelyard_dataset.projections.uses import VersionUses
from modelyard_devstack.platform import Platform
from modelyard_devstack.processes import eventually
from modelyard_events.envelope import EventEnvelope
from modelyard_events.hashing import envelope_hash
from modelyard_events.schemas.datasets import DATASET_EVENTS, SampleDeleted
from modelyard_events.signing import keyring_from_json
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.signing import OTHER_SIGNER
from modelyard_events.topics import dead_letter_topic, events_topic
from modelyard_events.verify import verify_chain
from modelyard_events.wire import encode_envelope, message_headers
from tests.integration.dataset_client import DatasetClient, digit_files
from tests.integration.job_client import JobClient

pytestmark = pytest.mark.integration
CLASSES = ["0", "1"]
USES = "dataset_views.dataset_version_uses"  # dataset-svc's default views schema


async def refusal(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def published(datasets: DatasetClient, org_id: str) -> tuple[datasets_pb2.Dataset, str]:
    """A ready version 1 of a fresh two-class dataset, and its URI."""
    dataset = await datasets.build(org_id, digit_files(5, [0, 1]), CLASSES)
    version = await datasets.stub.PublishVersion(
        datasets_pb2.PublishVersionRequest(dataset_id=dataset.dataset_id)
    )
    assert version.readiness.ready, version.readiness
    return dataset, version.uri


def unique_png(name: str) -> tuple[str, bytes]:
    """An 8×8 grey PNG of random pixels (bytes no other test uploads)."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng().integers(0, 256, (8, 8), dtype=np.uint8), mode="L").save(
        buffer, format="PNG"
    )
    return f"{name}.png", buffer.getvalue()


async def sample_ids(datasets: DatasetClient, dataset_id: str) -> list[str]:
    listed = await datasets.stub.ListSamples(datasets_pb2.ListSamplesRequest(dataset_id=dataset_id))
    return [s.sample_id for s in listed.samples]


async def use_recorded(engine: AsyncEngine, user_id: str) -> bool:
    async with engine.connect() as conn:
        found = await conn.execute(text(f"SELECT 1 FROM {USES} WHERE user_id = :u"), {"u": user_id})
        return found.first() is not None


async def test_deleting_a_sample_of_a_version_a_job_used_is_refused_naming_version_and_job(
    datasets: DatasetClient, jobs: JobClient, engine: AsyncEngine, fresh_org: str
) -> None:
    dataset, uri = await published(datasets, fresh_org)
    job = await jobs.create(fresh_org, uri)
    await eventually(lambda: use_recorded(engine, job.job_id), 30.0, "dataset-svc learned the job's use")
    sample_id = (await sample_ids(datasets, dataset.dataset_id))[0]

    error = await refusal(
        datasets.stub.DeleteSample(datasets_pb2.DeleteSampleRequest(sample_id=sample_id, reason="blurry"))
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = error.details() or ""
    assert f"version 1, used by job {job.job_id}" in details
    assert sample_id in details

    error = await refusal(
        datasets.stub.DeleteDataset(
            datasets_pb2.DeleteDatasetRequest(dataset_id=dataset.dataset_id, reason="x")
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"version 1, used by job {job.job_id}" in (error.details() or "")
    assert sample_id in await sample_ids(datasets, dataset.dataset_id)  # nothing was deleted


async def test_deleting_an_unused_sample_removes_its_file_and_gives_its_bytes_back(
    datasets: DatasetClient, services: Platform, engine: AsyncEngine, fresh_org: str
) -> None:
    dataset = await datasets.create(fresh_org, CLASSES)
    # Bytes no other dataset holds (files are content-addressed and shared: a shared one stays).
    uploaded = await datasets.upload(dataset.dataset_id, [unique_png("a"), unique_png("b")])
    doomed = uploaded.samples[0]
    blobs = LocalFolderBlobStore(services.workdir / "blobs")
    assert await blobs.exists(doomed.sha256)

    done = await datasets.stub.DeleteSample(
        datasets_pb2.DeleteSampleRequest(sample_id=doomed.sample_id, reason="a face is visible")
    )

    assert (done.samples_deleted, done.bytes_freed) == (1, doomed.size_bytes)
    assert done.org_bytes_used == uploaded.org_bytes_used - doomed.size_bytes
    assert not await blobs.exists(doomed.sha256)
    assert await blobs.exists(uploaded.samples[1].sha256)
    await datasets.counts_when(dataset.dataset_id, samples=1)
    assert await sample_ids(datasets, dataset.dataset_id) == [uploaded.samples[1].sample_id]
    error = await refusal(datasets.stub.GetSample(datasets_pb2.SampleRef(sample_id=doomed.sample_id)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    again = await datasets.stub.DeleteSample(
        datasets_pb2.DeleteSampleRequest(sample_id=doomed.sample_id, reason="a face is visible")
    )
    assert again.org_bytes_used == done.org_bytes_used  # a repeat gives nothing back twice

    # The events stay: the log says who deleted what and why, and still verifies with dataset-svc's key.
    store = PostgresEventStore(engine, "dataset")
    try:
        stream = [DATASET_EVENTS.decode(e) for e in await store.read_stream(dataset.dataset_id)]
        [deleted] = [e for e in stream if isinstance(e, SampleDeleted)]
        assert (deleted.sample_id, deleted.deleted_by, deleted.reason) == (
            doomed.sample_id,
            "dev",
            "a face is visible",
        )
        await store.signatures.flush()
        keys = keyring_from_json(json.dumps({"dataset": [services.signers["dataset"].public_text()]}))
        assert (await verify_chain(store, keys=keys["dataset"])).ok
    finally:
        await store.close()


async def test_deleting_a_whole_unused_dataset_gives_back_every_byte_and_reads_say_not_found(
    datasets: DatasetClient, fresh_org: str
) -> None:
    dataset = await datasets.create(fresh_org, CLASSES)
    uploaded = await datasets.upload(dataset.dataset_id, [unique_png(str(n)) for n in range(3)])
    done = await datasets.stub.DeleteDataset(
        datasets_pb2.DeleteDatasetRequest(dataset_id=dataset.dataset_id, reason="collected by mistake")
    )
    assert (done.samples_deleted, done.bytes_freed) == (3, uploaded.bytes_added)
    assert done.org_bytes_used == uploaded.org_bytes_used - uploaded.bytes_added
    error = await refusal(datasets.stub.GetDataset(datasets_pb2.DatasetRef(dataset_id=dataset.dataset_id)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "deleted by dev: collected by mistake" in (error.details() or "")


async def test_an_archived_dataset_refuses_uploads_until_it_is_unarchived(
    datasets: DatasetClient, fresh_org: str
) -> None:
    dataset = await datasets.create(fresh_org, CLASSES)
    archived = await datasets.stub.ArchiveDataset(
        datasets_pb2.DatasetLifecycleRequest(dataset_id=dataset.dataset_id, reason="season over")
    )
    assert archived.status == datasets_pb2.DATASET_STATUS_ARCHIVED

    async def listed_archived() -> bool:
        listed = await datasets.stub.ListDatasets(datasets_pb2.ListDatasetsRequest(org_id=fresh_org))
        return [d.status for d in listed.datasets] == [datasets_pb2.DATASET_STATUS_ARCHIVED]

    await eventually(listed_archived, 30.0, "the views list the dataset as archived")
    files = [(n, d) for n, d, _ in digit_files(1, [0])]

    error = await refusal(datasets.upload(dataset.dataset_id, files))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"dataset {dataset.dataset_id} (digits) is archived" in (error.details() or "")
    error = await refusal(
        datasets.stub.UpdateDataset(
            datasets_pb2.UpdateDatasetRequest(dataset_id=dataset.dataset_id, description="x")
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION

    back = await datasets.stub.UnarchiveDataset(
        datasets_pb2.DatasetLifecycleRequest(dataset_id=dataset.dataset_id, reason="needed again")
    )
    assert back.status == datasets_pb2.DATASET_STATUS_DRAFT
    assert (await datasets.upload(dataset.dataset_id, files)).added == 1
    described = await datasets.stub.UpdateDataset(
        datasets_pb2.UpdateDatasetRequest(dataset_id=dataset.dataset_id, description="digits from camera 4")
    )
    assert described.description == "digits from camera 4"


@pytest.mark.parametrize("roles", [("org_admin",), ("auditor",), ("trainer",)])
async def test_only_operators_change_a_dataset(
    datasets: DatasetClient, services: Platform, fresh_org: str, roles: tuple[str, ...]
) -> None:
    dataset = await datasets.create(fresh_org, CLASSES)
    token = services.token(roles, org_id=fresh_org)
    async with DatasetClient.connect(services.dataset_target, token) as other:
        for call in (
            other.stub.ArchiveDataset(
                datasets_pb2.DatasetLifecycleRequest(dataset_id=dataset.dataset_id, reason="r")
            ),
            other.stub.DeleteDataset(
                datasets_pb2.DeleteDatasetRequest(dataset_id=dataset.dataset_id, reason="r")
            ),
            other.stub.UpdateDataset(
                datasets_pb2.UpdateDatasetRequest(dataset_id=dataset.dataset_id, description="d")
            ),
        ):
            assert (await refusal(call)).code() == grpc.StatusCode.PERMISSION_DENIED
    assert (
        await datasets.stub.GetDataset(datasets_pb2.DatasetRef(dataset_id=dataset.dataset_id))
    ).status == (datasets_pb2.DATASET_STATUS_DRAFT)


async def test_another_organizations_admin_reads_nothing_of_a_dataset(
    datasets: DatasetClient, services: Platform, fresh_org: str
) -> None:
    dataset = await datasets.create(fresh_org, CLASSES)
    async with DatasetClient.connect(
        services.dataset_target, services.token(("org_admin",), "org-other")
    ) as other:
        error = await refusal(other.stub.GetDataset(datasets_pb2.DatasetRef(dataset_id=dataset.dataset_id)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert fresh_org not in (error.details() or "")


async def test_oversized_or_missing_reasons_and_unknown_ids_are_refused_saying_what_to_fix(
    datasets: DatasetClient, fresh_org: str
) -> None:
    dataset = await datasets.create(fresh_org, CLASSES)
    stub = datasets.stub
    error = await refusal(
        stub.ArchiveDataset(
            datasets_pb2.DatasetLifecycleRequest(dataset_id=dataset.dataset_id, reason="r" * 2001)
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "reason" in (error.details() or "")
    assert "at most 2000 characters" in (error.details() or "")
    error = await refusal(
        stub.DeleteDataset(datasets_pb2.DeleteDatasetRequest(dataset_id=dataset.dataset_id))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "reason" in (error.details() or "")

    unknown = "ds-" + "0" * 20
    error = await refusal(
        stub.DeleteDataset(datasets_pb2.DeleteDatasetRequest(dataset_id=unknown, reason="r"))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await refusal(
        stub.DeleteSample(
            datasets_pb2.DeleteSampleRequest(sample_id=f"{dataset.dataset_id}:{'0' * 24}", reason="r")
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await refusal(
        stub.DeleteSample(datasets_pb2.DeleteSampleRequest(sample_id="not-a-sample", reason="r"))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "sample id" in (error.details() or "")


async def test_a_forged_job_event_on_the_broker_marks_no_version_as_used(
    datasets: DatasetClient, jobs: JobClient, services: Platform, engine: AsyncEngine, fresh_org: str
) -> None:
    target, target_uri = await published(datasets, fresh_org)
    _, other_uri = await published(datasets, fresh_org)
    forged_job = f"job-forged-{uuid.uuid4().hex[:8]}"
    job_store = PostgresEventStore(engine, "job")
    try:
        head = await job_store.head_position()
        [last] = await job_store.read_all(head - 1, 1)
    finally:
        await job_store.close()
    # A JobCreated that links to job-svc's real head and hashes right, signed with a key nobody pinned.
    forged = EventEnvelope(
        **{
            **last.model_dump(),
            "event_id": uuid.uuid4(),
            "stream_type": "training_job",
            "stream_id": forged_job,
            "stream_version": 1,
            "position": head + 1,
            "type": "JobCreated",
            "schema_version": 1,
            "org_id": fresh_org,
            "data": {
                "job_id": forged_job,
                "org_id": fresh_org,
                "name": "forged",
                "ai_module": "digit-reader",
                "family": "image_classifier",
                "dataset_uri": target_uri,
                "hyperparameters": {},
                "priority": 50,
                "created_by": "mallory",
            },
            "prev_hash": last.hash,
            "hash": "0" * 64,
        }
    )
    forged = EventEnvelope(**{**forged.model_dump(), "hash": envelope_hash(forged)})
    topic = events_topic("job", services.base_env["MODELYARD_TOPIC_NAMESPACE"])
    producer = AIOKafkaProducer(bootstrap_servers=services.infra.kafka_bootstrap_servers)
    await producer.start()
    try:
        signed = OTHER_SIGNER.sign(forged.position, forged.hash)
        await producer.send_and_wait(
            topic, encode_envelope(forged), key=forged_job.encode(), headers=message_headers(forged, signed)
        )
    finally:
        await producer.stop()

    # dataset-svc's uses consumer itself refused it (job-svc's and the registry's consumers read the
    # same topic and dead-letter it too; the header says whose letter it is).
    letter = await _dead_letter_of(
        services, dead_letter_topic(topic), encode_envelope(forged), VersionUses.name
    )
    assert "not pinned" in letter

    genuine = await jobs.create(fresh_org, other_uri)  # job-svc's real event at that position
    await eventually(lambda: use_recorded(engine, genuine.job_id), 30.0, "the genuine job's use")
    assert not await use_recorded(engine, forged_job)
    sample_id = (await sample_ids(datasets, target.dataset_id))[0]
    done = await datasets.stub.DeleteSample(
        datasets_pb2.DeleteSampleRequest(sample_id=sample_id, reason="unused")
    )
    assert done.samples_deleted == 1


async def _dead_letter_of(services: Platform, topic: str, value: bytes, projection: str) -> str:
    """The error of the dead letter `projection` wrote for `value` (waits for it)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=services.infra.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=f"dlq-{uuid.uuid4().hex}",
    )
    await consumer.start()
    found: list[str] = []
    try:

        async def written() -> bool:
            batches = await consumer.getmany(timeout_ms=200)
            for record in (r for rs in batches.values() for r in rs):
                headers = dict(record.headers)
                if record.value == value and headers.get("projection") == projection.encode():
                    found.append(headers["error"].decode())
            return bool(found)

        await eventually(written, 30.0, f"{projection}'s dead letter of the forged event")
    finally:
        await consumer.stop()
    return found[0]
