"""The gRPC layer's settings, from the environment only (MODELYARD_*)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from modelyard_grpc.auth import MIN_SECRET_BYTES
from modelyard_grpc.tls import TlsSettings


class GrpcSettings(TlsSettings):
    """What every service's gRPC server and clients need; a service's own settings may subclass it.

    MODELYARD_AUTH_SECRET (required, ≥ 32 bytes) signs and checks bearer tokens;
    MODELYARD_GRPC_BIND is 127.0.0.1 by default (0.0.0.0 in a container);
    MODELYARD_GRPC_GRACE_S is how long calls in flight may finish on shutdown;
    MODELYARD_AUTH_LEEWAY_S tolerates clock skew when checking expiry;
    MODELYARD_TLS_* turn TLS on for its servers and clients (modelyard_grpc.tls).
    """

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore")

    auth_secret: SecretStr = Field(min_length=MIN_SECRET_BYTES)
    grpc_bind: str = "127.0.0.1"
    grpc_grace_s: float = Field(default=5.0, ge=0)
    auth_leeway_s: float = Field(default=10.0, ge=0)
