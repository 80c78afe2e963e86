"""Kafka clients' SASL/SSL: settings → client options, a TLS context that checks the brokers, and
every client the code builds made by the one factory."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from faststream.kafka.security import parse_security
from pydantic import ValidationError

from modelyard_events.kafka_security import (
    PLAINTEXT,
    KafkaSecurity,
    faststream_security,
    kafka_admin,
    kafka_consumer,
    kafka_options,
    kafka_producer,
)
from modelyard_events.testing.certificates import LocalCertificates, make_certificates
from modelyard_events.topics import ensure_topics

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> LocalCertificates:
    return make_certificates(tmp_path_factory.mktemp("kafka-tls"))


def security(**env: str) -> KafkaSecurity:
    return KafkaSecurity.model_validate(env)


class TestSettings:
    @pytest.mark.parametrize(
        "env",
        [
            {},
            {"security_protocol": "SSL"},
            {"security_protocol": "SASL_SSL", "username": "job-svc", "password": "s3cret"},
            {
                "security_protocol": "SASL_PLAINTEXT",
                "username": "u",
                "password": "p",
                "sasl_mechanism": "PLAIN",
            },
            {
                "security_protocol": "SASL_SSL",
                "username": "u",
                "password": "p",
                "sasl_mechanism": "SCRAM-SHA-256",
            },
        ],
    )
    def test_the_faststream_intake_connects_exactly_as_the_aiokafka_clients_do(
        self, certs: LocalCertificates, env: dict[str, str]
    ) -> None:
        tls = {"ssl_ca_file": str(certs.ca_file)} if env.get("security_protocol", "").endswith("SSL") else {}
        settings = security(**env, **tls)
        ours, theirs = settings.client_options(), parse_security(faststream_security(settings))
        ours_context, theirs_context = ours.pop("ssl_context", None), theirs.pop("ssl_context", None)
        assert theirs == ({} if ours == {"security_protocol": "PLAINTEXT"} else ours)
        assert (ours_context is None) == (theirs_context is None)
        if theirs_context is not None:
            assert theirs_context.verify_mode == ssl.CERT_REQUIRED
            assert theirs_context.check_hostname

    def test_nothing_set_is_plaintext_without_credentials(self) -> None:
        assert kafka_options(None) == {"security_protocol": "PLAINTEXT"}
        assert PLAINTEXT.client_options() == {"security_protocol": "PLAINTEXT"}

    def test_sasl_ssl_from_the_environment_gives_scram_credentials_and_a_verifying_context(
        self, certs: LocalCertificates, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MODELYARD_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
        monkeypatch.setenv("MODELYARD_KAFKA_SSL_CA_FILE", str(certs.ca_file))
        monkeypatch.setenv("MODELYARD_KAFKA_USERNAME", "job-svc")
        monkeypatch.setenv("MODELYARD_KAFKA_PASSWORD", "s3cret")
        options = KafkaSecurity().client_options()
        context = options.pop("ssl_context")
        assert options == {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": "job-svc",
            "sasl_plain_password": "s3cret",
        }
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
        assert [dict(n[0] for n in ca["subject"]) for ca in context.get_ca_certs()] == [
            {"commonName": "test CA"}
        ]

    def test_the_password_is_not_shown(self) -> None:
        settings = security(
            security_protocol="SASL_PLAINTEXT", username="job-svc", password="s3cret", sasl_mechanism="PLAIN"
        )
        assert "s3cret" not in repr(settings)
        assert "ssl_context" not in settings.client_options()

    def test_sasl_without_a_password_is_refused_naming_the_variables(self) -> None:
        with pytest.raises(
            ValidationError, match="needs MODELYARD_KAFKA_USERNAME and MODELYARD_KAFKA_PASSWORD"
        ):
            security(security_protocol="SASL_SSL", username="job-svc")

    def test_an_unknown_protocol_or_mechanism_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            security(security_protocol="TLS")
        with pytest.raises(ValidationError):
            security(security_protocol="SASL_SSL", sasl_mechanism="GSSAPI", username="u", password="p")

    def test_a_missing_ca_file_is_named(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="MODELYARD_KAFKA_SSL_CA_FILE: no such file"):
            security(security_protocol="SSL", ssl_ca_file=str(tmp_path / "absent.crt"))

    def test_a_client_certificate_without_its_key_is_refused(self, certs: LocalCertificates) -> None:
        with pytest.raises(ValidationError, match="SSL_CERT_FILE and MODELYARD_KAFKA_SSL_KEY_FILE"):
            security(security_protocol="SSL", ssl_cert_file=str(certs.cert_file))


@asynccontextmanager
async def tls_only_broker(
    certs: LocalCertificates, *, client_cert: bool
) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A listener that completes only TLS handshakes (then hangs up): `handshaken` is set by the
    first client that trusted its certificate (and, with `client_cert`, presented one of the CA's)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.cert_file, certs.key_file)
    if client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(certs.ca_file)
    handshaken = asyncio.Event()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handshaken.set()  # asyncio calls back only once the TLS handshake succeeded
        writer.close()

    server = await asyncio.start_server(accepted, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}", handshaken
    finally:
        server.close()


async def handshake_seen(connect: Callable[[], Awaitable[object]], handshaken: asyncio.Event) -> bool:
    """Whether the client completes a handshake before it gives up (or 10 s pass)."""
    attempt = asyncio.ensure_future(connect())
    waiting = asyncio.ensure_future(handshaken.wait())
    try:
        await asyncio.wait([attempt, waiting], timeout=10, return_when=asyncio.FIRST_COMPLETED)
        return handshaken.is_set()
    finally:
        for task in (attempt, waiting):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def start(client: object) -> None:
    await client.start()  # type: ignore[attr-defined]


class TestClientsSpeakTls:
    def mutual(self, certs: LocalCertificates) -> KafkaSecurity:
        return security(
            security_protocol="SSL",
            ssl_ca_file=str(certs.ca_file),
            ssl_cert_file=str(certs.cert_file),
            ssl_key_file=str(certs.key_file),
        )

    @pytest.mark.parametrize("kind", ["producer", "consumer", "admin", "ensure_topics"])
    async def test_every_client_kind_completes_a_mutual_tls_handshake(
        self, certs: LocalCertificates, kind: str
    ) -> None:
        settings = self.mutual(certs)
        async with tls_only_broker(certs, client_cert=True) as (bootstrap, handshaken):
            connect = {
                "producer": lambda: start(kafka_producer(bootstrap, settings)),
                "consumer": lambda: start(
                    kafka_consumer("t", bootstrap_servers=bootstrap, security=settings)
                ),
                "admin": lambda: start(kafka_admin(bootstrap, settings)),
                "ensure_topics": lambda: ensure_topics(bootstrap, ["t"], security=settings),
            }[kind]
            assert await handshake_seen(connect, handshaken)

    async def test_a_plaintext_client_never_completes_a_handshake(self, certs: LocalCertificates) -> None:
        async with tls_only_broker(certs, client_cert=False) as (bootstrap, handshaken):
            assert not await handshake_seen(lambda: ensure_topics(bootstrap, ["t"]), handshaken)

    async def test_a_client_without_the_certificate_is_refused_by_a_mutual_tls_broker(
        self, certs: LocalCertificates
    ) -> None:
        server_only = security(security_protocol="SSL", ssl_ca_file=str(certs.ca_file))
        async with tls_only_broker(certs, client_cert=True) as (bootstrap, handshaken):
            assert not await handshake_seen(lambda: start(kafka_admin(bootstrap, server_only)), handshaken)


def test_every_kafka_client_in_the_code_is_built_by_the_factory() -> None:
    direct = re.compile(r"\bAIOKafka(Producer|Consumer|AdminClient)\(")
    sources = [*REPO.glob("libs/*/src/**/*.py"), *REPO.glob("services/*/src/**/*.py")]
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for path in sources
        if path.name != "kafka_security.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if direct.search(line)
    ]
    assert len(sources) > 50
    assert offenders == [], "build Kafka clients with modelyard_events.kafka_security"
