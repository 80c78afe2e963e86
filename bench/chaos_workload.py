"""The fault campaign's workload: datasets and training jobs through gRPC (registry and deploy
commands: chaos_releases).

Each command that gets an OK answer is *acknowledged* and goes into the ledger with the ids it
returned and the event it promised, so the checks afterwards can look for that event in the
service's log. A command refused with a transient status (the service is being killed, PostgreSQL
restarts) is retried with the same idempotency key where the API has one; one that still fails is
not acknowledged and promises nothing.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf import struct_pb2

from modelyard.v1 import (
    datasets_pb2,
    datasets_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
)
from modelyard_devstack.platform import Platform

T = TypeVar("T")
ORG = "chaos-org"
MODULE = "chaos-digits"
CALL_TIMEOUT_S = 15.0
RETRY_FOR_S = 90.0  # a fault is over well within this: the service or server is restarted at once
# Transient while a process or PostgreSQL is down; ABORTED is a lost race, retried as a client would.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.ABORTED,
    }
)
FINISHED_JOBS = frozenset(
    {jobs_pb2.JOB_STATE_COMPLETED, jobs_pb2.JOB_STATE_FAILED, jobs_pb2.JOB_STATE_CANCELLED}
)


@dataclass(frozen=True)
class Ack:
    """An acknowledged command and the events its service promised: for each of `ids`, an event of
    `event_type` naming it (as its stream id or in its payload). `key` is the idempotency key it was
    sent with, if any."""

    service: str
    command: str
    event_type: str
    ids: tuple[str, ...]
    key: str = ""


@dataclass
class Ledger:
    """What the workload was told: acknowledged commands, and the attempts that were not."""

    acks: list[Ack] = field(default_factory=list)
    unacknowledged: Counter[str] = field(default_factory=Counter)
    refusals: dict[str, str] = field(default_factory=dict)  # the first answer of each kind, for the report
    retried: Counter[str] = field(default_factory=Counter)
    job_ids: list[str] = field(default_factory=list)
    rollout_ids: list[str] = field(default_factory=list)

    def ack(self, service: str, command: str, event_type: str, ids: Sequence[str], key: str = "") -> None:
        """Record an OK answer."""
        self.acks.append(Ack(service, command, event_type, tuple(ids), key))


@dataclass
class Workload:
    """The workload's clients: the platform, a ledger, and where the digits are."""

    running: Platform
    ledger: Ledger
    digits_uri: str
    sample_files: list[tuple[str, bytes, str]]  # (filename, PNG bytes, class)
    edge_servers: list[str]
    rng: random.Random

    async def call(
        self,
        target: str,
        command: str,
        rpc: Callable[[grpc.aio.Channel], Awaitable[T]],
        subject: str = "chaos",
        also_retry: frozenset[grpc.StatusCode] = frozenset(),
    ) -> T | None:
        """`rpc` on a fresh channel, retried while the answer is transient; None when it never succeeded.

        A fresh channel per attempt: a channel to a killed process would otherwise wait out gRPC's
        reconnect backoff, which measures the client, not the service.
        """
        until = time.monotonic() + RETRY_FOR_S
        while True:
            try:
                async with self.running.channel(target, self.running.token(subject=subject)) as ch:
                    return await rpc(ch)
            except grpc.aio.AioRpcError as error:
                if error.code() not in RETRYABLE | also_retry or time.monotonic() > until:
                    refusal = f"{command}: {error.code().name}"
                    self.ledger.unacknowledged[refusal] += 1
                    self.ledger.refusals.setdefault(refusal, error.details() or "")
                    return None
                self.ledger.retried[command] += 1
            await asyncio.sleep(0.5)

    async def datasets(self, stop: asyncio.Event) -> None:
        """Create a dataset, upload digits, label and approve them, publish a version; again."""
        round_ = 0
        while not stop.is_set():
            await self.dataset_round(round_)
            round_ += 1
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))

    async def dataset_round(self, round_: int) -> None:
        """One dataset from creation to its first published version (stops at the first failure)."""
        dataset_id = await self.create_dataset(f"chaos digits {round_}")
        if dataset_id is None:
            return
        per_round = 20
        start = (round_ * per_round) % (len(self.sample_files) - per_round)
        files = self.sample_files[start : start + per_round]
        samples = await self.upload(dataset_id, files)
        if samples is None:
            return
        labels = [(samples[name], cls) for name, _, cls in files if name in samples]
        if not await self.label(dataset_id, labels):
            return
        for sample_id in samples.values():
            await self.approve_sample(sample_id)
        await self.publish(dataset_id, round_)

    async def create_dataset(self, name: str) -> str | None:
        """CreateDataset (idempotent by request id); its id once acknowledged."""
        key = uuid.uuid4().hex
        request = datasets_pb2.CreateDatasetRequest(
            org_id=ORG, name=name, ai_module=MODULE, environment=datasets_pb2.ENVIRONMENT_DEV,
            label_schema=datasets_pb2.LabelSchema(
                task=datasets_pb2.LABEL_TASK_CLASSIFICATION, classes=[str(d) for d in range(10)]
            ),
            request_id=key,
        )  # fmt: skip
        created = await self.call(
            self.running.dataset_target,
            "CreateDataset",
            lambda ch: _datasets(ch).CreateDataset(request, timeout=CALL_TIMEOUT_S),
        )
        if created is None:
            return None
        self.ledger.ack("dataset-svc", "CreateDataset", "DatasetCreated", [created.dataset_id], key)
        return str(created.dataset_id)

    async def upload(self, dataset_id: str, files: Sequence[tuple[str, bytes, str]]) -> dict[str, str] | None:
        """UploadSamples (idempotent by upload id): filename → sample id once acknowledged."""
        upload_id = uuid.uuid4().hex

        def requests() -> list[datasets_pb2.UploadSamplesRequest]:
            start = datasets_pb2.UploadStart(dataset_id=dataset_id, upload_id=upload_id, files=len(files))
            parts = [datasets_pb2.UploadSamplesRequest(start=start)]
            for name, data, _ in files:
                header = datasets_pb2.UploadFile(filename=name, size_bytes=len(data))
                parts += [
                    datasets_pb2.UploadSamplesRequest(file=header),
                    datasets_pb2.UploadSamplesRequest(chunk=data),
                ]
            return parts

        uploaded = await self.call(
            self.running.dataset_target,
            "UploadSamples",
            lambda ch: _datasets(ch).UploadSamples(iter(requests()), timeout=CALL_TIMEOUT_S),
        )
        if uploaded is None:
            return None
        ids = [s.sample_id for s in uploaded.samples if not s.duplicate]
        self.ledger.ack("dataset-svc", "UploadSamples", "SamplesAdded", [dataset_id, *ids], upload_id)
        return {s.filename: s.sample_id for s in uploaded.samples}

    async def label(self, dataset_id: str, labels: Sequence[tuple[str, str]]) -> bool:
        """LabelSamples (a repeated label replaces the annotator's own: safe to retry)."""
        request = datasets_pb2.LabelSamplesRequest(
            dataset_id=dataset_id,
            labels=[
                datasets_pb2.SampleLabel(sample_id=s, annotation=datasets_pb2.Annotation(class_name=c))
                for s, c in labels
            ],
        )
        labeled = await self.call(
            self.running.dataset_target,
            "LabelSamples",
            lambda ch: _datasets(ch).LabelSamples(request, timeout=CALL_TIMEOUT_S),
            subject="chaos-annotator",
        )
        if labeled is None:
            return False
        self.ledger.ack("dataset-svc", "LabelSamples", "SampleLabeled", [s for s, _ in labels])
        return True

    async def approve_sample(self, sample_id: str) -> None:
        """ReviewSample approve at the version read just before (ABORTED: read again and retry)."""

        async def review(ch: grpc.aio.Channel) -> datasets_pb2.Sample:
            stub = _datasets(ch)
            sample = await stub.GetSample(datasets_pb2.SampleRef(sample_id=sample_id), timeout=CALL_TIMEOUT_S)
            request = datasets_pb2.ReviewSampleRequest(
                sample_id=sample_id,
                decision=datasets_pb2.REVIEW_DECISION_APPROVE,
                expected_version=sample.version,
            )
            reviewed: datasets_pb2.Sample = await stub.ReviewSample(request, timeout=CALL_TIMEOUT_S)
            return reviewed

        reviewed = await self.call(
            self.running.dataset_target, "ReviewSample", review, subject="chaos-reviewer"
        )
        if reviewed is not None:
            self.ledger.ack("dataset-svc", "ReviewSample", "SampleApproved", [sample_id])

    async def publish(self, dataset_id: str, seed: int) -> None:
        """PublishVersion (idempotent by request id)."""
        key = uuid.uuid4().hex
        request = datasets_pb2.PublishVersionRequest(dataset_id=dataset_id, seed=seed, request_id=key)
        published = await self.call(
            self.running.dataset_target,
            "PublishVersion",
            lambda ch: _datasets(ch).PublishVersion(request, timeout=CALL_TIMEOUT_S),
        )
        if published is not None:
            self.ledger.ack("dataset-svc", "PublishVersion", "DatasetVersionPublished", [dataset_id], key)

    async def jobs(self, stop: asyncio.Event, in_flight: int = 1) -> None:
        """Keep `in_flight` one-epoch training jobs unfinished: a new one whenever one ends (one, so that
        the evaluations the releases ask for do not wait behind a queue of training jobs)."""
        seed = 0
        while not stop.is_set():
            if await self.unfinished_jobs() < in_flight:
                await self.create_job(seed)
                seed += 1
            await asyncio.sleep(self.rng.uniform(1.0, 3.0))

    async def unfinished_jobs(self) -> int:
        """How many of the workload's jobs job-svc shows unfinished (in_flight when it cannot say)."""
        listed = await self.call(
            self.running.job_target,
            "ListJobs",
            lambda ch: _jobs(ch).ListJobs(jobs_pb2.ListJobsRequest(org_id=ORG, page_size=500), timeout=5),
        )
        if listed is None:
            return 1_000
        return sum(1 for job in listed.jobs if job.state not in FINISHED_JOBS)

    async def create_job(self, seed: int) -> None:
        """CreateJob (idempotent by request id): one epoch on the digits."""
        key = uuid.uuid4().hex
        values = struct_pb2.Struct()
        values.update({"epochs": 1, "seed": seed})
        request = jobs_pb2.CreateJobRequest(
            name=f"chaos {seed}", ai_module=MODULE, family="image_classifier", dataset_uri=self.digits_uri,
            hyperparameters=values, org_id=ORG, request_id=key,
        )  # fmt: skip
        job = await self.call(
            self.running.job_target,
            "CreateJob",
            lambda ch: _jobs(ch).CreateJob(request, timeout=CALL_TIMEOUT_S),
            subject="dev",
        )
        if job is not None:
            self.ledger.ack("job-svc", "CreateJob", "JobCreated", [job.job_id], key)
            self.ledger.job_ids.append(job.job_id)


def digit_files(folder: Path) -> list[tuple[str, bytes, str]]:
    """scikit-learn's digits as PNG files (modelyard_trainer's export), read back with their class."""
    from modelyard_trainer.datasets.digits import export_digits_images

    labelled = export_digits_images(folder)
    return [(name, (folder / name).read_bytes(), cls) for name, cls in labelled]


def _datasets(ch: grpc.aio.Channel) -> Any:
    return datasets_pb2_grpc.DatasetServiceStub(ch)


def _jobs(ch: grpc.aio.Channel) -> Any:
    return jobs_pb2_grpc.JobServiceStub(ch)
