"""TLS from MODELYARD_TLS_*: servers serve TLS only, clients trust only the configured CA, mTLS on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError

from modelyard_events.testing.certificates import LocalCertificates, make_certificates
from modelyard_grpc import TlsSettings, channel, serving
from modelyard_grpc.probe import answers_serving
from modelyard_grpc.probe import main as probe_main

SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> LocalCertificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCertificates:
    return make_certificates(tmp_path_factory.mktemp("other-tls"), ca_name="another CA")


def settings_of(env: dict[str, str]) -> TlsSettings:
    return TlsSettings.from_environ(env)


@asynccontextmanager
async def tls_server(settings: TlsSettings) -> AsyncIterator[str]:
    async with serving([], service_names=[], credentials=settings.server_credentials(), grace_s=0) as server:
        yield f"127.0.0.1:{server.port}"


async def health(ch: aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return int(reply.status)


async def refused(ch: aio.Channel) -> grpc.StatusCode:
    with pytest.raises(aio.AioRpcError) as caught:
        await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return caught.value.code()


class TestServerTls:
    async def test_a_client_trusting_the_ca_is_served(self, certs: LocalCertificates) -> None:
        settings = settings_of(certs.env())
        async with tls_server(settings) as target, settings.grpc_channel(target) as ch:
            assert await health(ch) == SERVING

    async def test_a_plaintext_client_is_refused(self, certs: LocalCertificates) -> None:
        async with tls_server(settings_of(certs.env())) as target, channel(target) as ch:
            assert await refused(ch) == grpc.StatusCode.UNAVAILABLE

    async def test_a_client_trusting_another_ca_is_refused(
        self, certs: LocalCertificates, other_ca: LocalCertificates
    ) -> None:
        client = settings_of({"MODELYARD_TLS_CA_FILE": str(other_ca.ca_file)})
        async with tls_server(settings_of(certs.env())) as target, client.grpc_channel(target) as ch:
            assert await refused(ch) == grpc.StatusCode.UNAVAILABLE

    async def test_a_server_name_that_the_certificate_does_not_carry_is_refused(
        self, certs: LocalCertificates
    ) -> None:
        client = settings_of({**certs.env(), "MODELYARD_TLS_SERVER_NAME": "job-svc.elsewhere"})
        async with tls_server(settings_of(certs.env())) as target, client.grpc_channel(target) as ch:
            assert await refused(ch) == grpc.StatusCode.UNAVAILABLE

    async def test_the_server_name_setting_is_checked_instead_of_the_dialled_host(
        self, tmp_path: Path
    ) -> None:
        named = make_certificates(tmp_path, names=("job-svc.modelyard.svc",))
        client = settings_of({**named.env(), "MODELYARD_TLS_SERVER_NAME": "job-svc.modelyard.svc"})
        async with tls_server(settings_of(named.env())) as target, client.grpc_channel(target) as ch:
            assert await health(ch) == SERVING


class TestMutualTls:
    async def test_with_client_auth_a_client_presenting_its_certificate_is_served(
        self, certs: LocalCertificates
    ) -> None:
        settings = settings_of(certs.env(client_auth=True))
        async with tls_server(settings) as target, settings.grpc_channel(target) as ch:
            assert await health(ch) == SERVING

    async def test_with_client_auth_a_client_without_a_certificate_is_refused(
        self, certs: LocalCertificates
    ) -> None:
        anonymous = settings_of({"MODELYARD_TLS_CA_FILE": str(certs.ca_file)})
        async with (
            tls_server(settings_of(certs.env(client_auth=True))) as target,
            anonymous.grpc_channel(target) as ch,
        ):
            assert await refused(ch) == grpc.StatusCode.UNAVAILABLE

    async def test_with_client_auth_a_certificate_from_another_ca_is_refused(
        self, certs: LocalCertificates, other_ca: LocalCertificates
    ) -> None:
        stranger = settings_of(
            {**other_ca.env(client_auth=True), "MODELYARD_TLS_CA_FILE": str(certs.ca_file)}
        )
        async with (
            tls_server(settings_of(certs.env(client_auth=True))) as target,
            stranger.grpc_channel(target) as ch,
        ):
            assert await refused(ch) == grpc.StatusCode.UNAVAILABLE


class TestSettings:
    def test_nothing_set_is_plaintext(self) -> None:
        settings = TlsSettings.from_environ({})
        assert settings.server_credentials() is None
        assert settings.channel_credentials() is None

    def test_the_environment_names_the_files(
        self, certs: LocalCertificates, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name, value in certs.env(client_auth=True).items():
            monkeypatch.setenv(name, value)
        settings = TlsSettings()
        assert (settings.tls_cert_file, settings.tls_ca_file) == (certs.cert_file, certs.ca_file)
        assert settings.tls_client_auth
        assert settings.serves_tls
        assert settings.dials_tls

    def test_a_certificate_without_its_key_is_refused_naming_both(self, certs: LocalCertificates) -> None:
        with pytest.raises(ValidationError, match="MODELYARD_TLS_CERT_FILE and MODELYARD_TLS_KEY_FILE"):
            settings_of({"MODELYARD_TLS_CERT_FILE": str(certs.cert_file)})

    def test_a_missing_file_is_named(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="MODELYARD_TLS_CA_FILE: no such file"):
            settings_of({"MODELYARD_TLS_CA_FILE": str(tmp_path / "absent.pem")})

    def test_client_auth_needs_a_ca_and_a_certificate(self, certs: LocalCertificates) -> None:
        with pytest.raises(ValidationError, match="MODELYARD_TLS_CLIENT_AUTH needs"):
            settings_of({"MODELYARD_TLS_CA_FILE": str(certs.ca_file), "MODELYARD_TLS_CLIENT_AUTH": "true"})

    def test_settings_from_a_given_environment_ignore_the_process_own(
        self, certs: LocalCertificates, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MODELYARD_TLS_CA_FILE", "/nowhere/ca.pem")
        assert TlsSettings.from_environ({}).channel_credentials() is None
        given = TlsSettings.from_environ({"MODELYARD_TLS_CA_FILE": str(certs.ca_file)})
        assert given.tls_ca_file == certs.ca_file


class TestProbe:
    async def test_the_probe_dials_tls_and_checks_the_name_it_is_given(self, tmp_path: Path) -> None:
        named = make_certificates(tmp_path, names=("job-svc", "job-svc.modelyard.svc"))
        settings = settings_of(named.env())
        async with tls_server(settings) as target:
            port = int(target.rsplit(":", 1)[1])
            assert await answers_serving(settings, port, server_name="job-svc")
            assert not await answers_serving(settings, port, timeout_s=0.5)  # 127.0.0.1 is not in it
            assert not await answers_serving(TlsSettings.from_environ({}), port, timeout_s=0.5)

    def test_the_probe_exits_1_when_nothing_serves(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("MODELYARD_TLS_CA_FILE", "MODELYARD_TLS_CERT_FILE", "MODELYARD_TLS_KEY_FILE"):
            monkeypatch.delenv(name, raising=False)
        assert probe_main(["9", "--timeout-s", "0.2"]) == 1
