"""How every Kafka client authenticates and encrypts: one factory for producers, consumers and admins.

Every Kafka client the code builds comes from `kafka_producer`, `kafka_consumer`, `kafka_admin` or
(the projection runner's FastStream intake) `faststream_security` here, so none can miss the settings.

From the environment (MODELYARD_KAFKA_*), plaintext unless set (the embedded Tansu stack):

- MODELYARD_KAFKA_SECURITY_PROTOCOL: PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL;
- MODELYARD_KAFKA_SSL_CA_FILE: the CA that signs the brokers' certificates (Strimzi: the secret
  `<cluster>-cluster-ca-cert`, key `ca.crt`); without it the system's CAs are trusted;
- MODELYARD_KAFKA_SSL_CERT_FILE / MODELYARD_KAFKA_SSL_KEY_FILE: a client certificate (mutual TLS);
- MODELYARD_KAFKA_SASL_MECHANISM: SCRAM-SHA-512 (default), SCRAM-SHA-256 or PLAIN;
- MODELYARD_KAFKA_USERNAME / MODELYARD_KAFKA_PASSWORD: the SASL user (Strimzi: the KafkaUser's name
  and the `password` key of the secret of the same name).

Over SSL and SASL_SSL the brokers' host names are checked against their certificates.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal, Self

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
_PREFIX = "MODELYARD_KAFKA_"


class KafkaSecurity(BaseSettings):
    """The security settings every Kafka client of a process shares (see the module's docstring).

    Construction fails, naming the variable, when a file is missing, when SASL lacks a user or a
    password, or when only one of the client certificate and its key is given.
    """

    model_config = SettingsConfigDict(env_prefix=_PREFIX, extra="ignore")

    security_protocol: SecurityProtocol = "PLAINTEXT"
    ssl_ca_file: Path | None = None
    ssl_cert_file: Path | None = None
    ssl_key_file: Path | None = None
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for name in ("ssl_ca_file", "ssl_cert_file", "ssl_key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{_PREFIX}{name.upper()}: no such file {path}")
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise ValueError(
                f"{_PREFIX}SSL_CERT_FILE and {_PREFIX}SSL_KEY_FILE go together: set both or neither"
            )
        if self.uses_sasl and not (self.username and self.password and self.password.get_secret_value()):
            raise ValueError(
                f"{_PREFIX}SECURITY_PROTOCOL={self.security_protocol} needs {_PREFIX}USERNAME and "
                f"{_PREFIX}PASSWORD"
            )
        return self

    @property
    def uses_ssl(self) -> bool:
        """True when the connection to the brokers is TLS."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """True when the client authenticates with a SASL user and password."""
        return self.security_protocol.startswith("SASL_")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for the brokers (None on plaintext): verifies their certificates and names,
        presents the client certificate when one is set."""
        if not self.uses_ssl:
            return None
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(self.ssl_ca_file) if self.ssl_ca_file else None
        )
        if self.ssl_cert_file and self.ssl_key_file:
            context.load_cert_chain(self.ssl_cert_file, self.ssl_key_file)
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.uses_ssl:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl and self.password is not None:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.username
            options["sasl_plain_password"] = self.password.get_secret_value()
        return options


PLAINTEXT = KafkaSecurity.model_construct()  # the defaults, whatever the environment says
"""No encryption, no authentication: the embedded stack and tests."""


def kafka_options(security: KafkaSecurity | None) -> dict[str, Any]:
    """`security`'s client options, plaintext for None."""
    return (security or PLAINTEXT).client_options()


def kafka_producer(
    bootstrap_servers: str, security: KafkaSecurity | None, **options: Any
) -> AIOKafkaProducer:
    """A producer (not started) connecting as `security` says (plaintext for None)."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap_servers, **options, **kafka_options(security))


def kafka_consumer(
    *topics: str, bootstrap_servers: str, security: KafkaSecurity | None, **options: Any
) -> AIOKafkaConsumer:
    """A consumer (not started) of `topics` connecting as `security` says (plaintext for None)."""
    return AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap_servers, **options, **kafka_options(security)
    )


def kafka_admin(bootstrap_servers: str, security: KafkaSecurity | None) -> AIOKafkaAdminClient:
    """An admin client (not started) connecting as `security` says (plaintext for None)."""
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **kafka_options(security))


def faststream_security(security: KafkaSecurity | None) -> BaseSecurity | None:
    """`security` as FastStream's broker takes it (None on plaintext): the same TLS context and SASL
    user as the aiokafka clients get."""
    if security is None or security.security_protocol == "PLAINTEXT":
        return None
    context = security.ssl_context()
    if not security.uses_sasl or security.password is None or security.username is None:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    mechanism = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
    password = security.password.get_secret_value()
    return mechanism[security.sasl_mechanism](
        security.username, password, ssl_context=context, use_ssl=security.uses_ssl
    )
