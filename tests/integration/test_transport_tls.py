"""The services with TLS on (mutual TLS, certificates made by the test): every gRPC hop is encrypted
and authenticated, and a client that is plaintext or trusts another CA gets nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from modelyard.v1 import datasets_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from modelyard_devstack import Infra
from modelyard_devstack.platform import Platform, platform
from modelyard_events.testing.certificates import LocalCertificates, make_certificates
from modelyard_grpc import TlsSettings, channel
from modelyard_trainer.datasets.digits import export_digits
from tests.integration.dataset_client import DatasetClient
from tests.integration.job_client import JobClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> LocalCertificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_services(
    stack: Infra, certs: LocalCertificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """dataset-svc, job-svc and trainer-svc serving and dialling mutual TLS only; readiness is
    checked over TLS too (the platform dials with the same settings). A database of their own: the
    session's job-svc would otherwise dispatch these jobs too, to trainers that never hear of them."""
    tag = uuid.uuid4().hex[:8]
    workdir = tmp_path_factory.mktemp("tls-platform")
    env = certs.env(client_auth=True)
    with platform(stack, workdir, topic_namespace=f"tls-{tag}", env=env, database=f"tls_{tag}") as running:
        yield running


async def test_calls_with_the_ca_and_a_client_certificate_succeed_across_services(
    tls_services: Platform,
) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    async with tls_services.channel(tls_services.dataset_target, tls_services.token()) as ch:
        dataset = await DatasetClient(datasets_pb2_grpc.DatasetServiceStub(ch)).create(org, ["0", "1"])
    assert dataset.dataset_id
    # CreateJob asks dataset-svc for the version: job-svc dials dataset-svc with its own certificate,
    # so the answer is dataset-svc's FAILED_PRECONDITION, not UNAVAILABLE.
    async with tls_services.channel(tls_services.job_target, tls_services.token()) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await jobs_pb2_grpc.JobServiceStub(ch).CreateJob(
                jobs_pb2.CreateJobRequest(
                    name="tls",
                    ai_module="digit-reader",
                    family="image_classifier",
                    dataset_uri=f"dataset://{dataset.dataset_id}/1",
                    org_id=org,
                )
            )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION, caught.value.details()
    assert "none is published yet" in (caught.value.details() or "")


async def test_a_trainer_worker_heartbeats_to_job_svc_over_tls(tls_services: Platform) -> None:
    trainer_id = f"tls-{uuid.uuid4().hex[:6]}"
    tls_services.spawn_trainer(trainer_id)
    try:
        await tls_services.trainer_alive(trainer_id)
    finally:
        tls_services.stop(f"trainer-{trainer_id}")


async def test_a_trainer_worker_reports_a_job_to_trainer_svc_over_tls(
    tls_services: Platform, tmp_path: Path
) -> None:
    """The worker's AppendReports go to trainer-svc over mutual TLS (the worker has no database)."""
    trainer_id = f"tls-{uuid.uuid4().hex[:6]}"
    digits = export_digits(tmp_path / "digits.npz").as_uri()
    tls_services.spawn_trainer(trainer_id)
    try:
        await tls_services.trainer_alive(trainer_id)
        async with tls_services.channel(tls_services.job_target, tls_services.token()) as ch:
            jobs = JobClient(jobs_pb2_grpc.JobServiceStub(ch), jobs_pb2_grpc.QueryServiceStub(ch))
            job = await jobs.create(f"org-{uuid.uuid4().hex[:8]}", digits, epochs=1)
            # A first epoch over TLS, late in the suite: 120 s ran out once in a loaded CI run.
            done = await jobs.wait_for(job.job_id, jobs_pb2.JOB_STATE_COMPLETED, timeout_s=240)
    finally:
        tls_services.stop(f"trainer-{trainer_id}")
    assert done.epochs_done == 1


async def _refusal(ch: grpc.aio.Channel) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await jobs_pb2_grpc.QueryServiceStub(ch).ListTrainers(jobs_pb2.ListTrainersRequest(), timeout=5)
    return caught.value.code()


async def test_a_plaintext_call_is_refused(tls_services: Platform) -> None:
    async with channel(tls_services.job_target, tls_services.token()) as ch:
        assert await _refusal(ch) == grpc.StatusCode.UNAVAILABLE


async def test_a_call_trusting_another_ca_is_refused(
    tls_services: Platform, certs: LocalCertificates, tmp_path: Path
) -> None:
    other = make_certificates(tmp_path, ca_name="another CA")
    stranger = TlsSettings.from_environ(
        {
            **other.env(client_auth=True),
            "MODELYARD_TLS_CERT_FILE": str(certs.cert_file),
            "MODELYARD_TLS_KEY_FILE": str(certs.key_file),
        }
    )
    async with stranger.grpc_channel(tls_services.job_target, tls_services.token()) as ch:
        assert await _refusal(ch) == grpc.StatusCode.UNAVAILABLE


async def test_a_call_without_a_client_certificate_is_refused(
    tls_services: Platform, certs: LocalCertificates
) -> None:
    anonymous = TlsSettings.from_environ({"MODELYARD_TLS_CA_FILE": str(certs.ca_file)})
    async with anonymous.grpc_channel(tls_services.job_target, tls_services.token()) as ch:
        assert await _refusal(ch) == grpc.StatusCode.UNAVAILABLE
