"""The real worker and API processes on the embedded PostgreSQL and broker, job-svc faked over gRPC."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import grpc
import psutil
import pytest
from aiokafka import AIOKafkaProducer
from grpc import aio
from sqlalchemy.ext.asyncio import AsyncEngine
from typing_extensions import override
from worker_samples import dispatch_of

from modelyard.v1 import events_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from modelyard_devstack import Infra
from modelyard_devstack.processes import eventually, free_port, spawn, stop_pid
from modelyard_events.db import create_engine
from modelyard_events.domain_errors import NotFound
from modelyard_events.envelope import Actor, CommandContext, DomainEvent, EventEnvelope
from modelyard_events.relay import Relay
from modelyard_events.schemas.jobs import JOB_STREAM, JobDispatched, JobPauseRequested
from modelyard_events.schemas.training import (
    RUN_STREAM,
    TRAINER_EVENTS,
    EpochCompleted,
    TrainingCancelled,
    TrainingCompleted,
    TrainingPaused,
)
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.signing import TEST_SIGNER
from modelyard_events.topics import ensure_topics, events_topic
from modelyard_events.wire import encode_envelope, message_headers
from modelyard_grpc import (
    AccessPolicy,
    AuthInterceptor,
    GrpcEventSource,
    channel,
    command,
    mint_token,
    read,
    serving,
    wait_until_serving,
)
from modelyard_grpc.auth import Role
from modelyard_grpc.method_handlers import Context
from modelyard_grpc.testing import TEST_ISSUER, TEST_TOKEN_PUBLIC_KEYS, verifier_for
from modelyard_trainer.datasets.digits import export_digits
from modelyard_trainer.training import sha256_of
from modelyard_trainer.worker import liveness
from modelyard_trainer.worker.spec import path_of_file_uri

pytestmark = pytest.mark.integration

JOB_SVC_POLICY = AccessPolicy(
    {
        "/modelyard.v1.TrainerService/Heartbeat": command(Role.TRAINER, subject_field="trainer_id"),
        "/modelyard.v1.TrainerService/GetDispatch": read(Role.AUDITOR),
    }
)
JOB_SVC = CommandContext(actor=Actor(subject="job-svc", roles=("super_admin",)), org_id="org-1")


class RecordingTrainerService(jobs_pb2_grpc.TrainerServiceServicer):
    """job-svc's TrainerService, reduced to recording heartbeats and asking for one every second, and
    telling trainer-svc whose a dispatch in `job_store` is."""

    def __init__(self, job_store: PostgresEventStore) -> None:
        self.heartbeats: list[jobs_pb2.HeartbeatRequest] = []
        self.job_store = job_store

    @override
    async def Heartbeat(
        self, request: jobs_pb2.HeartbeatRequest, context: Context
    ) -> jobs_pb2.HeartbeatResponse:
        self.heartbeats.append(request)
        return jobs_pb2.HeartbeatResponse(lease_ttl_s=3.0)

    @override
    async def GetDispatch(self, request: jobs_pb2.DispatchRef, context: Context) -> jobs_pb2.Dispatch:
        for envelope in await self.job_store.read_stream(request.job_id):
            if envelope.type == "JobDispatched" and envelope.data["dispatch_id"] == request.dispatch_id:
                return jobs_pb2.Dispatch(
                    job_id=request.job_id,
                    dispatch_id=request.dispatch_id,
                    attempt=envelope.data["attempt"],
                    trainer_id=envelope.data["trainer_id"],
                    org_id=envelope.org_id,
                    event_id=str(envelope.event_id),
                    correlation_id=envelope.correlation_id,
                )
        raise NotFound(f"job {request.job_id} has no dispatch {request.dispatch_id}")

    def listed(self, dispatch_id: str) -> bool:
        return any(dispatch_id in beat.running_dispatch_ids for beat in self.heartbeats)


@pytest.fixture
async def engine(stack: Infra) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(stack.database_url)
    yield engine
    await engine.dispose()


@contextmanager
def trainer_process(
    mode: str, log_path: Path, env: Mapping[str, str], unset: tuple[str, ...] = ()
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m modelyard_trainer <mode>` with `env` on ours, less `unset`; stopped (SIGTERM, then
    SIGKILL) however the block ends."""
    process_env = {name: value for name, value in {**os.environ, **env}.items() if name not in unset}
    process = spawn([sys.executable, "-m", "modelyard_trainer", mode], log_path, env=process_env)
    try:
        yield process
    finally:
        stop_pid(process.pid)
        print(log_path.read_text())  # shown by pytest when the test fails


def assert_stopped_cleanly(process: subprocess.Popen[bytes], log_path: Path, mode: str) -> None:
    """Gone, and by the clean path (stop_pid reaps the child itself, so its exit status is not kept)."""
    assert not psutil.pid_exists(process.pid) or psutil.Process(process.pid).status() == psutil.STATUS_ZOMBIE
    assert f"{mode} stopped cleanly" in log_path.read_text()


def own_token_file(folder: Path, trainer_id: str, role: str = "trainer") -> Path:
    """What the token issuer writes for a worker (a trainer token for its own id) or for serve (an
    auditor token for job-svc, subject trainer-svc); neither holds a key."""
    path = folder / f"{trainer_id}.token"
    path.write_text(mint_token(TEST_ISSUER, trainer_id, None, [role], ttl_s=3600))
    return path


def base_env(stack: Infra, schema: str) -> dict[str, str]:
    return {
        "DATABASE_URL": stack.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap_servers,
        "MODELYARD_TOKEN_PUBLIC_KEYS": TEST_TOKEN_PUBLIC_KEYS,
        "MODELYARD_TRAINER_STORE_SCHEMA": schema,
        "MODELYARD_TOPIC_NAMESPACE": schema,  # this test's own topics: the session's broker is shared
        "MODELYARD_EVENT_SIGNING_KEY": TEST_SIGNER.private_text(),
        "MODELYARD_EVENT_PUBLIC_KEYS": json.dumps({"job": [TEST_SIGNER.public_text()]}),
    }


WORKER_HOLDS_NEITHER = ("DATABASE_URL", "MODELYARD_DATABASE_URL", "MODELYARD_EVENT_SIGNING_KEY")
"""A worker reports through trainer-svc: it gets no database URL and no signing key."""


class FakeJobSvc:
    """What job-svc does around a trainer: records heartbeats, appends job events and relays them."""

    def __init__(
        self, stack: Infra, job_store: PostgresEventStore, trainer_id: str, dataset: Path, namespace: str
    ) -> None:
        self.stack, self.job_store, self.trainer_id, self.dataset = stack, job_store, trainer_id, dataset
        self.namespace = namespace
        self.trainer_service = RecordingTrainerService(job_store)
        self.target = ""  # host:port of its TrainerService, once serving

    async def dispatch(self, epochs: int) -> tuple[JobDispatched, EventEnvelope]:
        """A new digits job dispatched to the trainer."""
        dispatch = dispatch_of(
            f"job-{uuid.uuid4().hex[:8]}",
            trainer_id=self.trainer_id,
            dataset_uri=self.dataset.as_uri(),
            hyperparameters={"epochs": epochs, "channels": 4},
        )
        return dispatch, await self.publish(dispatch.job_id, 0, dispatch)

    async def publish(self, job_id: str, version: int, event: DomainEvent) -> EventEnvelope:
        [envelope] = await self.job_store.append(JOB_STREAM, job_id, version, [event], JOB_SVC)
        producer = AIOKafkaProducer(bootstrap_servers=self.stack.kafka_bootstrap_servers, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(
                events_topic("job", self.namespace),
                encode_envelope(envelope),
                key=envelope.stream_id.encode(),
                headers=message_headers(envelope, TEST_SIGNER.sign(envelope.position, envelope.hash)),
            )
        finally:
            await producer.stop()
        return envelope


class TrainerLog:
    """The trainer store, read the way job-svc would."""

    def __init__(self, store: PostgresEventStore) -> None:
        self.store = store

    async def types(self, dispatch_id: str) -> list[str]:
        return [envelope.type for envelope in await self.store.read_stream(dispatch_id)]

    async def until(self, dispatch_id: str, type_name: str, last: bool = True) -> None:
        async def reported() -> bool:
            types = await self.types(dispatch_id)
            return bool(types) and (types[-1] == type_name if last else type_name in types)

        await eventually(reported, timeout_s=120, what=f"{type_name} for {dispatch_id}")


@pytest.fixture
async def job_svc(
    stack: Infra, engine: AsyncEngine, unique_schema: str, tmp_path: Path
) -> AsyncIterator[FakeJobSvc]:
    job_store = PostgresEventStore(engine, f"{unique_schema}_job", signer=TEST_SIGNER)
    await job_store.create_schema()
    dataset = export_digits(tmp_path / "d.npz")
    fake = FakeJobSvc(stack, job_store, f"trainer-{uuid.uuid4().hex[:8]}", dataset, unique_schema)
    async with serving(
        [(jobs_pb2_grpc.add_TrainerServiceServicer_to_server, fake.trainer_service)],
        service_names=["modelyard.v1.TrainerService"],
        interceptors=[AuthInterceptor(verifier_for(), JOB_SVC_POLICY)],
        grace_s=0,
    ) as server:
        fake.target = f"127.0.0.1:{server.port}"
        yield fake
    await job_store.close()


@pytest.fixture
async def trainer_store(engine: AsyncEngine, unique_schema: str) -> AsyncIterator[PostgresEventStore]:
    """The store the trainer processes of a test share (a fresh schema, created up front)."""
    store = PostgresEventStore(engine, unique_schema, signer=TEST_SIGNER)
    await store.create_schema()
    yield store
    await store.close()


async def test_a_worker_trains_its_dispatch_reports_it_heartbeats_it_and_stops_on_sigterm(
    stack: Infra, trainer_store: PostgresEventStore, unique_schema: str, tmp_path: Path, job_svc: FakeJobSvc
) -> None:
    trainer_log, heartbeats = TrainerLog(trainer_store), job_svc.trainer_service
    api_env, env = serve_and_worker_env(stack, unique_schema, tmp_path, job_svc)
    with (
        trainer_process("serve", tmp_path / "serve.log", api_env),
        trainer_process("work", tmp_path / "worker.log", env, unset=WORKER_HOLDS_NEITHER) as worker,
    ):

        async def heartbeating() -> bool:
            return bool(heartbeats.heartbeats)

        await eventually(heartbeating, timeout_s=90, what="the worker's first heartbeat")
        assert liveness.main([str(tmp_path / "alive" / "worker"), "--max-age-s", "30"]) == 0
        first = heartbeats.heartbeats[0]
        assert (first.trainer_id, first.slots_total, list(first.gpus)) == (job_svc.trainer_id, 1, [])
        assert list(first.running_dispatch_ids) == []

        dispatch, envelope = await job_svc.dispatch(epochs=2)
        await trainer_log.until(dispatch.dispatch_id, "TrainingCompleted")

        stream = await trainer_log.store.read_stream(dispatch.dispatch_id)
        assert {(e.stream_type, e.causation_id, e.org_id, e.actor.subject) for e in stream} == {
            (RUN_STREAM, str(envelope.event_id), "org-1", job_svc.trainer_id)
        }
        page = await trainer_log.store.read_signed(0)  # signed by trainer-svc, whose key the worker lacks
        assert page.heads
        events = [TRAINER_EVENTS.decode(e) for e in stream]
        assert [e.epoch for e in events if isinstance(e, EpochCompleted)] == [1, 2]
        done = events[-1]
        assert isinstance(done, TrainingCompleted)
        assert (done.job_id, done.attempt, done.trainer_id) == (dispatch.job_id, 1, job_svc.trainer_id)
        artifact = path_of_file_uri(done.artifact_uri)
        assert artifact.parent == tmp_path / "runs" / dispatch.job_id / "attempt-1" / dispatch.dispatch_id
        assert sha256_of(artifact) == done.artifact_sha256
        assert heartbeats.listed(dispatch.dispatch_id)

        paused, _ = await job_svc.dispatch(epochs=500)
        await trainer_log.until(paused.dispatch_id, "TrainingStarted", last=False)
        await job_svc.publish(paused.job_id, 1, JobPauseRequested(job_id=paused.job_id, attempt=1))
        await trainer_log.until(paused.dispatch_id, "TrainingPaused")
        pause = TRAINER_EVENTS.decode((await trainer_log.store.read_stream(paused.dispatch_id))[-1])
        assert isinstance(pause, TrainingPaused)
        assert path_of_file_uri(pause.checkpoint_uri).is_file()  # on the shared root, for whoever resumes

        running, _ = await job_svc.dispatch(epochs=500)  # the pause freed the only slot
        await trainer_log.until(running.dispatch_id, "TrainingStarted", last=False)
        await asyncio.to_thread(stop_pid, worker.pid)

        assert_stopped_cleanly(worker, tmp_path / "worker.log", "work")
        assert liveness.main([str(tmp_path / "alive" / "worker")]) == 1  # a stopped worker is not alive
        assert "cancelling 1 run(s)" in (tmp_path / "worker.log").read_text()
        assert not {"TrainingCancelled", "TrainingCompleted"} & set(
            await trainer_log.types(running.dispatch_id)
        )


async def test_a_worker_whose_training_thread_hangs_says_why_in_the_runs_logs_and_exits_with_3(
    stack: Infra, trainer_store: PostgresEventStore, unique_schema: str, tmp_path: Path, job_svc: FakeJobSvc
) -> None:
    # The real worker process, whose training says one phase and then hangs (sitecustomize.py,
    # imported at start-up, swaps it in), as on a file system that stopped answering.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HANGING_TRAINING)
    api_env, env = serve_and_worker_env(stack, unique_schema, tmp_path, job_svc)
    env |= {
        "MODELYARD_TRAINING_STALL_TIMEOUT_S": "1",
        "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
    }
    trainer_log = TrainerLog(trainer_store)
    with (
        trainer_process("serve", tmp_path / "serve.log", api_env),
        trainer_process("work", tmp_path / "worker.log", env, unset=WORKER_HOLDS_NEITHER) as worker,
    ):
        await eventually(lambda: _heartbeating(job_svc), timeout_s=90, what="the worker's first heartbeat")
        dispatch, _ = await job_svc.dispatch(epochs=2)

        status = await asyncio.to_thread(worker.wait, 60)

        assert status == 3
        worker_log = (tmp_path / "worker.log").read_text()
        assert "hung; exiting with status 3" in worker_log
        stream = await trainer_log.store.read_stream(dispatch.dispatch_id)
        lines = [line["message"] for e in stream if e.type == "TrainingLogged" for line in e.data["lines"]]
        assert any("the training thread has said nothing for" in line for line in lines)
        assert not {"TrainingFailed", "TrainingCancelled"} & {e.type for e in stream}  # resumed elsewhere


HANGING_TRAINING = """
import threading
import modelyard_trainer.worker.runs as runs

def hangs(dispatch, settings, observer, *_):
    observer.phase("loading_data", "reading a file system that has stopped answering")
    threading.Event().wait()

runs.train = hangs
"""


async def _heartbeating(job_svc: FakeJobSvc) -> bool:
    return bool(job_svc.trainer_service.heartbeats)


def serve_and_worker_env(
    stack: Infra, schema: str, tmp_path: Path, job_svc: FakeJobSvc
) -> tuple[dict[str, str], dict[str, str]]:
    """The environments of trainer-svc's API process and of a worker that reports through it."""
    api_port = free_port()
    api_env = base_env(stack, schema) | {
        "MODELYARD_TRAINER_GRPC_PORT": str(api_port),
        "MODELYARD_JOB_SVC_TARGET": job_svc.target,  # whose a dispatch is, before its first report
        "MODELYARD_TOKEN_FILE": str(own_token_file(tmp_path, "trainer-svc", "auditor")),
    }
    worker_env = base_env(stack, schema) | {
        "MODELYARD_TRAINER_SVC_TARGET": f"127.0.0.1:{api_port}",  # reports go there
        "MODELYARD_JOB_SVC_TARGET": job_svc.target,
        "MODELYARD_TRAINER_ID": job_svc.trainer_id,
        "MODELYARD_TRAINER_ROOT": str(tmp_path / "runs"),
        "MODELYARD_TRAINER_DEVICE": "cpu",
        "MODELYARD_PROGRESS_INTERVAL_S": "0.2",
        "MODELYARD_ALLOW_FILE_DATASETS": "true",  # the dispatch names digits as a local file
        "MODELYARD_TOKEN_FILE": str(own_token_file(tmp_path, job_svc.trainer_id)),
        "MODELYARD_TRAINER_LIVENESS_FILE": str(tmp_path / "alive" / "worker"),
    }
    return api_env, worker_env


async def test_the_api_process_serves_the_trainer_log_to_auditors_and_relays_it(
    stack: Infra, trainer_store: PostgresEventStore, unique_schema: str, tmp_path: Path
) -> None:
    store = trainer_store
    report = TrainingCancelled(job_id="job-1", attempt=1, dispatch_id="dsp-1", trainer_id="trainer-a")
    trainer_context = CommandContext(actor=Actor(subject="trainer-a", roles=("trainer",)), org_id="org-1")
    [recorded] = await store.append(RUN_STREAM, "dsp-1", 0, [report], trainer_context)
    await ensure_topics(stack.kafka_bootstrap_servers, [events_topic("trainer", unique_schema)])
    port = free_port()
    env = base_env(stack, unique_schema) | {
        "MODELYARD_TRAINER_GRPC_PORT": str(port),
        "MODELYARD_TOKEN_FILE": str(own_token_file(tmp_path, "trainer-svc", "auditor")),
    }
    with trainer_process("serve", tmp_path / "serve.log", env) as api:
        auditor = mint_token(TEST_ISSUER, "job-svc", None, ["auditor"], ttl_s=60)
        trainer = mint_token(TEST_ISSUER, "trainer-a", None, ["trainer"], ttl_s=60)
        async with (
            channel(f"127.0.0.1:{port}", auditor) as reader,
            channel(f"127.0.0.1:{port}", trainer) as other,
        ):
            await wait_until_serving(reader, "modelyard.v1.EventLog", timeout_s=90)
            events = await GrpcEventSource(events_pb2_grpc.EventLogStub(reader)).read_all(0)
            with pytest.raises(aio.AioRpcError) as refused:
                await GrpcEventSource(events_pb2_grpc.EventLogStub(other)).read_all(0)

        assert [e.hash for e in events] == [recorded.hash]
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        relay = Relay(
            store, stack.database_url, stack.kafka_bootstrap_servers, events_topic("trainer", unique_schema)
        )

        async def relayed() -> bool:
            return await relay.checkpoint() == recorded.position

        await eventually(relayed, timeout_s=60, what="the relay to publish the trainer log")
        await asyncio.to_thread(stop_pid, api.pid)
        assert_stopped_cleanly(api, tmp_path / "serve.log", "serve")
