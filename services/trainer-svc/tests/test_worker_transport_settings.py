"""A trainer's transport settings come from MODELYARD_KAFKA_* and MODELYARD_TLS_*; plaintext by default."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from worker_samples import settings_for

from modelyard_events.testing.certificates import LocalCertificates, make_certificates


@pytest.fixture
def certs(tmp_path: Path) -> LocalCertificates:
    return make_certificates(tmp_path / "tls")


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("MODELYARD_KAFKA_", "MODELYARD_TLS_")):
            monkeypatch.delenv(name)
    return monkeypatch


def test_without_settings_kafka_and_grpc_are_plaintext(clean: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert settings.kafka_security.client_options() == {"security_protocol": "PLAINTEXT"}
    assert settings.server_credentials() is None
    assert settings.channel_credentials() is None


def test_kafka_scram_over_tls_and_grpc_tls_come_from_the_environment(
    clean: pytest.MonkeyPatch, tmp_path: Path, certs: LocalCertificates
) -> None:
    for name, value in {
        "MODELYARD_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "MODELYARD_KAFKA_SSL_CA_FILE": str(certs.ca_file),
        "MODELYARD_KAFKA_USERNAME": "trainer-worker",
        "MODELYARD_KAFKA_PASSWORD": "from-the-strimzi-secret",
        **certs.env(client_auth=True),
    }.items():
        clean.setenv(name, value)
    settings = settings_for(tmp_path)
    options = settings.kafka_security.client_options()
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert options["sasl_plain_username"] == "trainer-worker"
    assert settings.dials_tls
    assert settings.serves_tls
    assert settings.tls_client_auth
