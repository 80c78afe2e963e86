"""One worker process: read dispatches, run them in threads, report, heartbeat; stop cleanly."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer

from modelyard.v1 import jobs_pb2
from modelyard_artifacts.download import https_context
from modelyard_events.schemas.jobs import JobDispatched
from modelyard_events.signing import HeadVerifier
from modelyard_events.topics import events_topic
from modelyard_trainer.config import TrainerSettings
from modelyard_trainer.datasets.versions import VersionFetcher
from modelyard_trainer.training.version_cache import VersionCache
from modelyard_trainer.worker import liveness
from modelyard_trainer.worker.heartbeats import Heartbeats, gpu_names, heartbeat_rpc
from modelyard_trainer.worker.intake import ControlRun, Intake, StartRun
from modelyard_trainer.worker.job_events import job_events, positioned_consumer
from modelyard_trainer.worker.model_inputs import ModelInputFetcher
from modelyard_trainer.worker.report_client import GrpcReportLog
from modelyard_trainer.worker.runs import Runs
from modelyard_trainer.worker.stalls import TrainingThreadStalled

log = logging.getLogger(__name__)


async def run_worker(settings: TrainerSettings, stop: asyncio.Event) -> None:
    """Work until `stop` is set, then cancel the runs (reporting nothing more) and close everything.

    Raises when the dispatch intake fails, and TrainingThreadStalled when a run's training thread
    hung (worker/stalls.py), after the same clean stop. Opens no database: reports
    go to trainer-svc (MODELYARD_TRAINER_SVC_TARGET), which appends and signs them.
    """
    # Positioned before the first heartbeat, so no dispatch made for us after we announce
    # ourselves can be missed.
    consumer = await positioned_consumer(
        settings.kafka_bootstrap_servers,
        events_topic("job", settings.topic_namespace),
        security=settings.kafka_security,
    )
    try:
        await _work(settings, consumer, stop)
    finally:
        await consumer.stop()


async def _work(settings: TrainerSettings, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
    intake = Intake(settings.trainer_id, settings.trainer_slots)
    token = settings.own_token()  # subject: this trainer's id, role trainer; renewed by the issuer
    gpus = gpu_names(settings.device)
    async with (
        settings.grpc_channel(settings.job_svc_target, token) as job_svc,
        settings.grpc_channel(settings.dataset_svc_target, token) as dataset_svc,
        settings.grpc_channel(settings.trainer_svc_target, token) as trainer_svc,
        settings.grpc_channel(settings.registry_svc_target, token) as registry_svc,
    ):
        fetcher = VersionFetcher(
            dataset_svc,
            VersionCache(settings.dataset_cache),
            settings.dataset_svc_target,
            stall_timeout_s=settings.download_stall_timeout_s,
        )
        heartbeats = Heartbeats(heartbeat_rpc(job_svc), lambda: heartbeat_request(intake, gpus))

        def finished(dispatch_id: str) -> None:
            intake.finished(dispatch_id)
            heartbeats.wake.set()

        models = ModelInputFetcher(
            registry_svc,
            token,
            settings.manifest_verifier(),
            settings.model_cache,
            settings.model_staging,
            target=settings.registry_svc_target,
            stall_timeout_s=settings.download_stall_timeout_s,
            tls=https_context(settings.tls_ca_file),
        )
        runs = Runs(settings, GrpcReportLog(trainer_svc), finished, fetcher.training_uri, models.artifact_for)
        beating = asyncio.create_task(heartbeats.run(stop), name="heartbeats")
        alive = [
            asyncio.create_task(liveness.beat(path, stop), name="liveness")
            for path in [settings.trainer_liveness_file]
            if path is not None
        ]
        job_keys = settings.keys_for("job")
        taking = asyncio.create_task(
            _take_dispatches(consumer, intake, runs, heartbeats, job_keys), name="intake"
        )
        log.info(
            "trainer %s: %d slot(s), GPUs %s", settings.trainer_id, settings.trainer_slots, gpus or "none"
        )
        if not settings.registry_public_keys:
            log.warning("MODELYARD_REGISTRY_PUBLIC_KEYS pins no registry key: fine-tuning runs will fail")
        stopped = asyncio.ensure_future(stop.wait())
        stalling = asyncio.ensure_future(runs.stall.wait())
        try:
            await asyncio.wait([taking, stopped, stalling], return_when=asyncio.FIRST_COMPLETED)
            if taking.done() and not runs.stalled:
                taking.result()  # the intake ended on an error: raise it after the clean stop below
        finally:
            log.info("stopping: no more dispatches; cancelling %d run(s)", len(intake.running_dispatch_ids))
            intake.stop_taking()
            stop.set()
            taking.cancel()
            beating.cancel()  # a heartbeat in flight would only renew leases we are giving up
            stalling.cancel()
            await runs.shutdown()
            await asyncio.gather(taking, beating, stopped, stalling, *alive, return_exceptions=True)
        if runs.stalled:  # before any other error: only an exit that does not join the thread ends it
            failed = taking.exception() if taking.done() and not taking.cancelled() else None
            raise TrainingThreadStalled(
                f"the training thread of dispatch(es) {sorted(runs.stalled)} hung"
            ) from failed


def heartbeat_request(intake: Intake, gpus: list[str]) -> jobs_pb2.HeartbeatRequest:
    """What this trainer tells job-svc now: its slots, GPUs and the dispatches it runs."""
    return jobs_pb2.HeartbeatRequest(
        trainer_id=intake.trainer_id,
        slots_total=intake.slots,
        gpus=gpus,
        running_dispatch_ids=intake.running_dispatch_ids,
    )


async def _take_dispatches(
    consumer: AIOKafkaConsumer, intake: Intake, runs: Runs, heartbeats: Heartbeats, job_keys: HeadVerifier
) -> None:
    async for envelope, event in job_events(consumer, job_keys):
        if isinstance(event, JobDispatched) and event.trainer_id == intake.trainer_id:
            log.info(
                "dispatch received: %s, job %s attempt %d", event.dispatch_id, event.job_id, event.attempt
            )
        decision = intake.decide(envelope, event)
        if isinstance(decision, StartRun):
            runs.start(decision)
            heartbeats.wake.set()  # job-svc learns at once that this dispatch runs here
        elif isinstance(decision, ControlRun):
            runs.control(decision)
        elif decision.reason:
            log.info(decision.reason)
    raise RuntimeError("the job events consumer stopped")
