"""Where the console listens and which services it calls: command-line options over the environment.

The services' targets and TLS are yard's (`MODELYARD_JOB_SVC_TARGET`, `MODELYARD_DATASET_SVC_TARGET`,
`MODELYARD_REGISTRY_SVC_TARGET`, `MODELYARD_DEPLOY_TARGET`, `MODELYARD_TLS_*`), so a shell set up for
`yard` runs the console against the same stack. The console holds no token of its own: each person
signs in with theirs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from modelyard_cli.connection import (
    DATASET_TARGET_ENV,
    DEFAULT_DATASET_TARGET,
    DEFAULT_DEPLOY_TARGET,
    DEFAULT_REGISTRY_TARGET,
    DEFAULT_TARGET,
    DEPLOY_TARGET_ENV,
    REGISTRY_TARGET_ENV,
    TARGET_ENV,
)
from modelyard_grpc import TlsSettings

HOST_ENV = "MODELYARD_CONSOLE_HOST"
PORT_ENV = "MODELYARD_CONSOLE_PORT"
SECURE_COOKIE_ENV = "MODELYARD_CONSOLE_SECURE_COOKIE"
PUBLIC_ORIGIN_ENV = "MODELYARD_CONSOLE_PUBLIC_ORIGIN"
DEFAULT_PORT = 8080
DEFAULT_REFRESH_S = 1.0


@dataclass(frozen=True, slots=True)
class ServiceTargets:
    """The gRPC address of each service the console calls."""

    job: str = DEFAULT_TARGET
    dataset: str = DEFAULT_DATASET_TARGET
    registry: str = DEFAULT_REGISTRY_TARGET
    deploy: str = DEFAULT_DEPLOY_TARGET


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """One console process: where it listens, what it calls, how often live pages refresh."""

    targets: ServiceTargets = field(default_factory=ServiceTargets)
    tls: TlsSettings | None = None  # None: plaintext to the services
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    secure_cookie: bool = False  # True behind HTTPS: the session cookie is then sent over HTTPS only
    refresh_s: float = DEFAULT_REFRESH_S
    # Behind a TLS proxy the console sees http://internal-host: the origin browsers use instead
    # (https://console.example.com), which every POST's Origin must then be. None: as each request came.
    public_origin: str | None = None


def origin_of(value: str) -> str:
    """`value` as an origin (`scheme://host[:port]`, no trailing slash); ValueError for anything else."""
    parts = urlsplit(value.strip().rstrip("/"))
    if (
        parts.scheme not in {"http", "https"}
        or not parts.netloc
        or parts.path
        or parts.query
        or parts.fragment
    ):
        raise ValueError(f"{value!r} is not an origin like https://console.example.com")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def parse_settings(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> ConsoleSettings:
    """The settings named by `argv` (options) and `environ` (their defaults)."""
    parser = argparse.ArgumentParser(prog="python -m modelyard_console", description=__doc__)
    parser.add_argument("--host", default=environ.get(HOST_ENV, "127.0.0.1"), help="interface to bind")
    parser.add_argument("--port", type=int, default=int(environ.get(PORT_ENV, DEFAULT_PORT)))
    parser.add_argument("--target", default=environ.get(TARGET_ENV, DEFAULT_TARGET), help="job-svc")
    parser.add_argument("--dataset-target", default=environ.get(DATASET_TARGET_ENV, DEFAULT_DATASET_TARGET))
    parser.add_argument(
        "--registry-target", default=environ.get(REGISTRY_TARGET_ENV, DEFAULT_REGISTRY_TARGET)
    )
    parser.add_argument("--deploy-target", default=environ.get(DEPLOY_TARGET_ENV, DEFAULT_DEPLOY_TARGET))
    parser.add_argument(
        "--secure-cookie",
        action="store_true",
        default=environ.get(SECURE_COOKIE_ENV, "").lower() in {"1", "true", "yes"},
        help="mark the session cookie Secure (serve the console behind HTTPS)",
    )
    parser.add_argument("--refresh-s", type=float, default=DEFAULT_REFRESH_S, help="live pages' period")
    parser.add_argument(
        "--public-origin",
        type=origin_of,
        default=environ.get(PUBLIC_ORIGIN_ENV) or None,
        help="the origin browsers reach the console at behind a proxy (https://console.example.com): "
        "the only Origin a POST may carry",
    )
    args = parser.parse_args(list(argv))
    targets = ServiceTargets(args.target, args.dataset_target, args.registry_target, args.deploy_target)
    return ConsoleSettings(
        targets=targets,
        tls=TlsSettings.from_environ(environ),
        host=args.host,
        port=args.port,
        secure_cookie=args.secure_cookie,
        refresh_s=args.refresh_s,
        public_origin=args.public_origin,
    )
