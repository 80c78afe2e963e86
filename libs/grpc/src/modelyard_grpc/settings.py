"""The gRPC layer's settings, from the environment only (MODELYARD_*)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import SettingsConfigDict

from modelyard_events.signing import SigningKeyError
from modelyard_grpc.auth import DEFAULT_MAX_LIFETIME_S, TokenVerifier
from modelyard_grpc.tls import TlsSettings
from modelyard_grpc.tokens import FileToken


class GrpcSettings(TlsSettings):
    """What every service's gRPC server and clients need; a service's own settings may subclass it.

    MODELYARD_TOKEN_PUBLIC_KEYS (required): the token issuers' public keys, a JSON list; a
    service accepts a token signed by one of them, for `token_audience` (its own name, set by the
    service's settings), living at most MODELYARD_TOKEN_MAX_LIFETIME_S (24 h);
    MODELYARD_TOKEN_FILE: where this process reads its own token (services that call others,
    trainer workers), written and renewed by the issuer;
    MODELYARD_GRPC_BIND is 127.0.0.1 by default (0.0.0.0 in a container);
    MODELYARD_GRPC_GRACE_S is how long calls in flight may finish on shutdown;
    MODELYARD_AUTH_LEEWAY_S tolerates clock skew when checking expiry;
    MODELYARD_TLS_* turn TLS on for its servers and clients (modelyard_grpc.tls).
    """

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore")

    token_public_keys: str
    token_audience: str = ""
    token_max_lifetime_s: float = Field(default=DEFAULT_MAX_LIFETIME_S, gt=0)
    token_file: Path | None = None
    grpc_bind: str = "127.0.0.1"
    grpc_grace_s: float = Field(default=5.0, ge=0)
    auth_leeway_s: float = Field(default=10.0, ge=0)

    @field_validator("token_public_keys")
    @classmethod
    def _pinned(cls, text: str) -> str:
        TokenVerifier.from_config(text, "check")  # SigningKeyError (a ValueError) says what is wrong
        return text

    def token_verifier(self) -> TokenVerifier:
        """How this service checks bearer tokens (its audience must be set by the service)."""
        if not self.token_audience:
            raise ValueError("token_audience is not set: each service names itself (job-svc, …)")
        return TokenVerifier.from_config(
            self.token_public_keys,
            self.token_audience,
            max_lifetime_s=self.token_max_lifetime_s,
            leeway_s=self.auth_leeway_s,
        )

    def own_token(self) -> FileToken:
        """This process's own token, from MODELYARD_TOKEN_FILE (required where it calls a service)."""
        if self.token_file is None:
            raise ValueError(
                "MODELYARD_TOKEN_FILE is not set: this process calls other services with the token "
                "its issuer writes there (see docs/security.md)"
            )
        return FileToken(self.token_file)


def settings_problems(error: ValidationError) -> str:
    """A settings error as one line an operator can act on: `field: message; …`."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())


def exit_on_bad_settings(start: Callable[[], None], log: logging.Logger) -> None:
    """Run `start` (a service's whole life); on bad settings log one line saying what to set, exit 2.

    Bad settings are those pydantic refuses when the settings are read, and a key found missing or
    unpinned while the service starts (SigningKeyError).
    """
    try:
        start()
    except ValidationError as error:
        log.error("bad settings: %s", settings_problems(error))
        sys.exit(2)
    except SigningKeyError as error:
        log.error("bad settings: %s", error)
        sys.exit(2)
