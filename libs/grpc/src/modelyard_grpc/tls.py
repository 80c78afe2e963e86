"""TLS for every gRPC server and client, from one set of settings (MODELYARD_TLS_*).

- MODELYARD_TLS_CERT_FILE and MODELYARD_TLS_KEY_FILE (PEM, both or neither): the process's own
  certificate chain and key. A server with them serves TLS only; without, plaintext.
- MODELYARD_TLS_CA_FILE (PEM): the CA the process trusts. A client with it connects over TLS only and
  accepts a server only with a certificate this CA signed for the name it dials; without, plaintext.
- MODELYARD_TLS_CLIENT_AUTH (default false): servers also require a client certificate signed by the
  CA (mutual TLS); clients then present their own certificate and key.
- MODELYARD_TLS_SERVER_NAME: the name a client checks in the server's certificate instead of the
  host it dials (e.g. `job-svc.modelyard.svc` through a port-forward to 127.0.0.1).

Files are read when the credentials are built, so a restart picks up rotated certificates.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import grpc
from grpc import aio
from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelyard_grpc.client import TokenSource, channel

ENV_PREFIX = "MODELYARD_"


class TlsSettings(BaseSettings):
    """The TLS settings of one process (see the module's docstring); every field empty: plaintext.

    Construction fails, naming the variable, when a file is missing, when only one of the
    certificate and the key is given, or when client authentication lacks the CA or a certificate.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_ca_file: Path | None = None
    tls_client_auth: bool = False
    tls_server_name: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Self:
        """The settings that `environ` (not the process's own environment) names: for a parent that
        starts processes with an environment of their own and must dial them the same way."""
        # Every field given, so nothing falls back to the process's own environment.
        given = {
            name: environ.get(f"{ENV_PREFIX}{name.upper()}", field.default)
            for name, field in cls.model_fields.items()
            if name.startswith("tls_")
        }
        return cls.model_validate(given)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for name in ("tls_cert_file", "tls_key_file", "tls_ca_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{ENV_PREFIX}{name.upper()}: no such file {path}")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(
                "MODELYARD_TLS_CERT_FILE and MODELYARD_TLS_KEY_FILE go together: set both or neither"
            )
        if self.tls_client_auth and (self.tls_ca_file is None or self.tls_cert_file is None):
            raise ValueError(
                "MODELYARD_TLS_CLIENT_AUTH needs MODELYARD_TLS_CA_FILE (to check client certificates) and "
                "MODELYARD_TLS_CERT_FILE/KEY_FILE (to present one)"
            )
        return self

    @property
    def serves_tls(self) -> bool:
        """True when this process's servers accept TLS only."""
        return self.tls_cert_file is not None

    @property
    def dials_tls(self) -> bool:
        """True when this process's clients connect over TLS only."""
        return self.tls_ca_file is not None

    def server_credentials(self) -> grpc.ServerCredentials | None:
        """Credentials for `serving(credentials=...)`; None (plaintext) without a certificate."""
        if self.tls_cert_file is None or self.tls_key_file is None:
            return None
        pair = (self.tls_key_file.read_bytes(), self.tls_cert_file.read_bytes())
        ca = self.tls_ca_file.read_bytes() if self.tls_client_auth and self.tls_ca_file else None
        return grpc.ssl_server_credentials(
            [pair], root_certificates=ca, require_client_auth=self.tls_client_auth
        )

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """Credentials for `channel(tls=...)`; None (plaintext) without a CA.

        With client authentication on, the process presents its own certificate.
        """
        if self.tls_ca_file is None:
            return None
        key = cert = None
        if self.tls_client_auth and self.tls_key_file and self.tls_cert_file:
            key, cert = self.tls_key_file.read_bytes(), self.tls_cert_file.read_bytes()
        return grpc.ssl_channel_credentials(self.tls_ca_file.read_bytes(), key, cert)

    def channel_options(self) -> tuple[tuple[str, Any], ...]:
        """Channel options: the server name to check when MODELYARD_TLS_SERVER_NAME is set."""
        if self.tls_server_name and self.dials_tls:
            return (("grpc.ssl_target_name_override", self.tls_server_name),)
        return ()

    def grpc_channel(self, target: str, token: TokenSource | None = None) -> aio.Channel:
        """`channel(target, token)` over TLS when these settings say so, else plaintext."""
        return channel(target, token, tls=self.channel_credentials(), options=self.channel_options())
