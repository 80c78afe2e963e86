"""yard over TLS: MODELYARD_TLS_CA_FILE makes it trust that CA only; a plaintext yard cannot reach a
TLS server; a CA file that does not exist is named."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from yard_fakes import FakeJobService, FakeJobSvc, FakeQueryService
from yard_runner import TOKEN, Yard, runner_for

from modelyard.v1 import jobs_pb2_grpc
from modelyard_events.testing.certificates import LocalCertificates, make_certificates


@pytest.fixture
def certs(tmp_path: Path) -> LocalCertificates:
    return make_certificates(tmp_path / "tls")


@pytest.fixture
def tls_job_svc(certs: LocalCertificates) -> Iterator[FakeJobSvc]:
    """The fake job-svc serving TLS only, with a certificate for 127.0.0.1 that `certs`' CA signed."""
    fake = FakeJobSvc()
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    jobs_pb2_grpc.add_JobServiceServicer_to_server(FakeJobService(fake), server)
    jobs_pb2_grpc.add_QueryServiceServicer_to_server(FakeQueryService(fake), server)
    credentials = grpc.ssl_server_credentials([(certs.key_file.read_bytes(), certs.cert_file.read_bytes())])
    fake.target = f"127.0.0.1:{server.add_secure_port('127.0.0.1:0', credentials)}"
    server.start()
    yield fake
    server.stop(grace=None)


@pytest.fixture
def tls_yard(tls_job_svc: FakeJobSvc) -> Yard:
    return runner_for({"MODELYARD_JOB_SVC_TARGET": tls_job_svc.target})


def test_with_the_ca_yard_talks_tls_and_sends_its_token(
    tls_yard: Yard, tls_job_svc: FakeJobSvc, certs: LocalCertificates
) -> None:
    result = tls_yard("trainers", env={"MODELYARD_TLS_CA_FILE": str(certs.ca_file)})
    assert result.exit_code == 0, result.output
    assert tls_job_svc.calls[0].metadata["authorization"] == f"Bearer {TOKEN}"


def test_without_the_ca_yard_cannot_reach_a_tls_server(tls_yard: Yard, tls_job_svc: FakeJobSvc) -> None:
    result = tls_yard("trainers", env={"MODELYARD_TLS_CA_FILE": None})
    assert result.exit_code == 2
    assert "UNAVAILABLE" in result.stderr
    assert tls_job_svc.calls == []


def test_a_ca_file_that_does_not_exist_is_named(tls_yard: Yard, tmp_path: Path) -> None:
    result = tls_yard("trainers", env={"MODELYARD_TLS_CA_FILE": str(tmp_path / "absent.pem")})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: MODELYARD_TLS_CA_FILE: no such file")
