"""The gRPC layer shared by every service: server bootstrap, auth, error mapping, event-log reads."""

from modelyard_grpc.auth import (
    Principal,
    Role,
    TokenError,
    TokenIssuer,
    TokenProblem,
    TokenVerifier,
    mint_token,
    require_org_access,
)
from modelyard_grpc.authorization import AuthInterceptor, acting_as, caller_of, current_principal
from modelyard_grpc.client import bearer_token_interceptors, channel, wait_until_serving
from modelyard_grpc.errors import (
    DependencyFailed,
    DependencyUnavailable,
    ErrorMappingInterceptor,
    dependency_refusal,
    field_violations,
    status_for,
)
from modelyard_grpc.event_log import (
    EventLogServicer,
    GrpcEventSource,
    envelope_from_proto,
    envelope_to_proto,
    read_events,
)
from modelyard_grpc.policy import EVENT_LOG_RULES, AccessPolicy, Rule, command, read
from modelyard_grpc.server import GrpcServer, build_server, serving
from modelyard_grpc.settings import GrpcSettings
from modelyard_grpc.tls import TlsSettings
from modelyard_grpc.tokens import FileToken, RenewingToken

__all__ = [
    "EVENT_LOG_RULES",
    "AccessPolicy",
    "AuthInterceptor",
    "DependencyFailed",
    "DependencyUnavailable",
    "ErrorMappingInterceptor",
    "EventLogServicer",
    "FileToken",
    "GrpcEventSource",
    "GrpcServer",
    "GrpcSettings",
    "Principal",
    "RenewingToken",
    "Role",
    "Rule",
    "TlsSettings",
    "TokenError",
    "TokenIssuer",
    "TokenProblem",
    "TokenVerifier",
    "acting_as",
    "bearer_token_interceptors",
    "build_server",
    "caller_of",
    "channel",
    "command",
    "current_principal",
    "dependency_refusal",
    "envelope_from_proto",
    "envelope_to_proto",
    "field_violations",
    "mint_token",
    "read",
    "read_events",
    "require_org_access",
    "serving",
    "status_for",
    "wait_until_serving",
]
