"""Where yard connects and as whom: the services' targets and the bearer token, from options and env only.

job-svc is at `--target` / `MODELYARD_JOB_SVC_TARGET`, dataset-svc at `--dataset-target` /
`MODELYARD_DATASET_SVC_TARGET`, registry-svc at `--registry-target` / `MODELYARD_REGISTRY_SVC_TARGET`,
deploy-svc at `--deploy-target` / `MODELYARD_DEPLOY_TARGET`; all get the same token. Over TLS when
`MODELYARD_TLS_CA_FILE` names the CA that signed the servers' certificates (`MODELYARD_TLS_SERVER_NAME`:
the name to check instead of the host dialled, e.g. through a port-forward;
`MODELYARD_TLS_CERT_FILE`/`KEY_FILE` for mutual TLS).

The token is `--token` / `MODELYARD_TOKEN`. Where the token issuer's private key
`MODELYARD_TOKEN_SIGNING_KEY` is at hand (a dev stack, the operator who issues tokens), yard
instead mints itself a short-lived `super_admin` token for `--as-subject` / `MODELYARD_SUBJECT`
(default `$USER`) in `--org` / `MODELYARD_ORG`. Anyone holding that key can sign any token, so
users get a token from whoever operates the platform and never see the key; services hold only
its public key.
"""

from __future__ import annotations

import getpass
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from grpc import aio

from modelyard.v1 import datasets_pb2_grpc, deploy_pb2_grpc, jobs_pb2_grpc, registry_pb2_grpc
from modelyard_grpc import TlsSettings, TokenIssuer, mint_token

DEFAULT_TARGET = "127.0.0.1:50051"
TARGET_ENV = "MODELYARD_JOB_SVC_TARGET"
DEFAULT_DATASET_TARGET = "127.0.0.1:50053"
DATASET_TARGET_ENV = "MODELYARD_DATASET_SVC_TARGET"
DEFAULT_REGISTRY_TARGET = "127.0.0.1:50054"
REGISTRY_TARGET_ENV = "MODELYARD_REGISTRY_SVC_TARGET"
DEFAULT_DEPLOY_TARGET = "127.0.0.1:50056"
DEPLOY_TARGET_ENV = "MODELYARD_DEPLOY_TARGET"
TOKEN_ENV = "MODELYARD_TOKEN"
SECRET_ENV = "MODELYARD_TOKEN_SIGNING_KEY"
SUBJECT_ENV = "MODELYARD_SUBJECT"
ORG_ENV = "MODELYARD_ORG"
DEV_TOKEN_ROLES = ["super_admin"]
DEV_TOKEN_TTL_S = 300.0


class CredentialsMissing(Exception):
    """Neither a token nor a signing key to mint one with: the message says what to set."""


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """What the global options and the environment say about connecting."""

    target: str = DEFAULT_TARGET
    token: str | None = None
    signing_key: str | None = None
    subject: str | None = None
    org_id: str | None = None
    dataset_target: str = DEFAULT_DATASET_TARGET
    tls: TlsSettings | None = None  # None: plaintext
    registry_target: str = DEFAULT_REGISTRY_TARGET
    deploy_target: str = DEFAULT_DEPLOY_TARGET


@dataclass(frozen=True, slots=True)
class ServiceAddress:
    """A service as a person points yard at it: its name, the option and the env var of its target."""

    name: str
    option: str
    env: str


JOB_SVC = ServiceAddress("job-svc", "--target", TARGET_ENV)
DATASET_SVC = ServiceAddress("dataset-svc", "--dataset-target", DATASET_TARGET_ENV)
REGISTRY_SVC = ServiceAddress("registry-svc", "--registry-target", REGISTRY_TARGET_ENV)
DEPLOY_SVC = ServiceAddress("deploy-svc", "--deploy-target", DEPLOY_TARGET_ENV)


def bearer_token(options: ConnectionOptions) -> str:
    """The token to send: the given one, else a short-lived token minted with the issuer's key.

    Raises CredentialsMissing when there is neither, and ValueError when the key is not one.
    """
    if options.token:
        return options.token
    if not options.signing_key:
        raise CredentialsMissing(
            f"no credentials: set {TOKEN_ENV} (or pass --token), or where you issue tokens set "
            f"{SECRET_ENV} so yard can mint a short-lived super_admin token"
        )
    subject = options.subject or _login_name()
    issuer = TokenIssuer.from_text(options.signing_key)
    return mint_token(issuer, subject, options.org_id or None, DEV_TOKEN_ROLES, DEV_TOKEN_TTL_S)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no $USER and no passwd entry (some containers)
        return "yard"


@dataclass(frozen=True, slots=True)
class JobSvc:
    """job-svc's gRPC stubs on one channel (`jobs`: JobService, `queries`: QueryService)."""

    jobs: Any  # jobs_pb2_grpc.JobServiceStub; generated stubs carry no type hints
    queries: Any  # jobs_pb2_grpc.QueryServiceStub


@dataclass(frozen=True, slots=True)
class DatasetSvc:
    """dataset-svc's gRPC stub (`datasets`: DatasetService)."""

    datasets: Any  # datasets_pb2_grpc.DatasetServiceStub


@dataclass(frozen=True, slots=True)
class RegistrySvc:
    """registry-svc's gRPC stub (`registry`: RegistryService)."""

    registry: Any  # registry_pb2_grpc.RegistryServiceStub


@dataclass(frozen=True, slots=True)
class DeploySvc:
    """deploy-svc's gRPC stub (`deploy`: DeployService)."""

    deploy: Any  # deploy_pb2_grpc.DeployServiceStub


Stubs = TypeVar("Stubs")


@asynccontextmanager
async def connected(
    target: str, token: str, stubs: Callable[[aio.Channel], Stubs], tls: TlsSettings | None = None
) -> AsyncIterator[Stubs]:
    """`stubs` built on one channel to `target`, every call carrying `authorization: Bearer <token>`;
    over TLS when `tls` says so."""
    async with (tls or TlsSettings.from_environ({})).grpc_channel(target, token) as ch:
        yield stubs(ch)


def job_svc_stubs(ch: aio.Channel) -> JobSvc:
    """job-svc's stubs on `ch`."""
    return JobSvc(jobs=jobs_pb2_grpc.JobServiceStub(ch), queries=jobs_pb2_grpc.QueryServiceStub(ch))


def dataset_svc_stubs(ch: aio.Channel) -> DatasetSvc:
    """dataset-svc's stub on `ch`."""
    return DatasetSvc(datasets=datasets_pb2_grpc.DatasetServiceStub(ch))


def registry_svc_stubs(ch: aio.Channel) -> RegistrySvc:
    """registry-svc's stub on `ch`."""
    return RegistrySvc(registry=registry_pb2_grpc.RegistryServiceStub(ch))


def deploy_svc_stubs(ch: aio.Channel) -> DeploySvc:
    """deploy-svc's stub on `ch`."""
    return DeploySvc(deploy=deploy_pb2_grpc.DeployServiceStub(ch))
