"""`yard edge-agent` / `python -m modelyard_edge`: run one edge server's agent until SIGINT or SIGTERM.

Options win over the environment: the targets (MODELYARD_DEPLOY_TARGET, MODELYARD_REGISTRY_SVC_TARGET),
the edge token (MODELYARD_TOKEN, or MODELYARD_TOKEN_FILE, read again whenever it changes), the
pinned registry keys (MODELYARD_REGISTRY_PUBLIC_KEYS: a JSON list, as trainers read it) and TLS
(MODELYARD_TLS_*, as every Modelyard client; `--ca-file` sets the CA for gRPC and downloads alike).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from modelyard_artifacts.manifest import ManifestVerifier
from modelyard_edge.agent import EdgeAgent
from modelyard_edge.config import (
    DEFAULT_DEPLOY_TARGET,
    DEFAULT_ENVIRONMENT,
    DEFAULT_REGISTRY_TARGET,
    AgentConfig,
    default_home,
    edge_version,
)
from modelyard_grpc.client import TokenSource
from modelyard_grpc.tls import TlsSettings
from modelyard_grpc.tokens import FileToken

DEPLOY_TARGET_ENV = "MODELYARD_DEPLOY_TARGET"
REGISTRY_TARGET_ENV = "MODELYARD_REGISTRY_SVC_TARGET"
TOKEN_ENV = "MODELYARD_TOKEN"
TOKEN_FILE_ENV = "MODELYARD_TOKEN_FILE"
PUBLIC_KEYS_ENV = "MODELYARD_REGISTRY_PUBLIC_KEYS"


class UsageError(Exception):
    """A missing or wrong option; the message says which and how to give it."""


def build_parser(prog: str = "yard edge-agent") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run one edge server: install released models, health-gate them, serve them offline.",
    )
    parser.add_argument("--server-id", required=True, help="this edge server's id (its token's subject)")
    parser.add_argument("--deploy-target", help=f"deploy-svc (${DEPLOY_TARGET_ENV}, {DEFAULT_DEPLOY_TARGET})")
    parser.add_argument(
        "--registry-target", help=f"registry-svc (${REGISTRY_TARGET_ENV}, {DEFAULT_REGISTRY_TARGET})"
    )
    parser.add_argument("--token-file", type=Path, help=f"file holding the edge token (${TOKEN_FILE_ENV})")
    parser.add_argument(
        "--registry-public-key",
        action="append",
        default=[],
        help=f"a pinned registry public key (repeatable; ${PUBLIC_KEYS_ENV}: a JSON list)",
    )
    parser.add_argument("--home", type=Path, help="the agent's folder (.modelyard/edge/<server-id>)")
    parser.add_argument("--environment", default=DEFAULT_ENVIRONMENT, help="default: production")
    parser.add_argument("--platform", default="", help="e.g. linux/arm64 (default: this machine's)")
    parser.add_argument("--probe-inputs", type=Path, help="probe inputs for the health gate (.npy, .jsonl)")
    parser.add_argument("--max-download-bytes-per-s", type=float, help="cap the download rate (a slow link)")
    parser.add_argument("--ca-file", type=Path, help="CA of the services and download URLs (TLS)")
    parser.add_argument(
        "--report-gap-s",
        type=float,
        default=1.0,
        help="hold a phase reported within this many seconds of the last report of its status (1.0)",
    )
    parser.add_argument("--log-level", default="INFO", help="default: INFO")
    parser.add_argument("--version", action="version", version=f"modelyard edge agent {edge_version()}")
    return parser


def config_from(options: argparse.Namespace, environ: Mapping[str, str] | None = None) -> AgentConfig:
    """The agent's configuration from parsed options and `environ` (default: the process's);
    UsageError naming what is missing."""
    env = os.environ if environ is None else environ
    server_id: str = options.server_id
    keys = tuple(options.registry_public_key) or _keys_from_env(env.get(PUBLIC_KEYS_ENV, ""))
    if not keys:
        raise UsageError(
            f"no registry public key is pinned: pass --registry-public-key or set {PUBLIC_KEYS_ENV}; "
            "an edge installs only what the registry signed"
        )
    try:
        ManifestVerifier.from_texts(keys)
    except ValueError as error:
        raise UsageError(f"a pinned registry public key is not one: {error}") from None
    rate = options.max_download_bytes_per_s
    if rate is not None and rate <= 0:
        raise UsageError(f"--max-download-bytes-per-s must be positive, not {rate}")
    if options.probe_inputs is not None and not options.probe_inputs.is_file():
        raise UsageError(f"--probe-inputs: no such file {options.probe_inputs}")
    tls = TlsSettings.from_environ(env)
    if options.ca_file is not None:
        tls = TlsSettings.model_validate({**tls.model_dump(), "tls_ca_file": options.ca_file})
    return AgentConfig(
        server_id=server_id,
        home=(options.home or default_home(server_id)).expanduser().absolute(),
        token=_token(options.token_file, env),
        registry_public_keys=keys,
        deploy_target=options.deploy_target or env.get(DEPLOY_TARGET_ENV) or DEFAULT_DEPLOY_TARGET,
        registry_target=options.registry_target or env.get(REGISTRY_TARGET_ENV) or DEFAULT_REGISTRY_TARGET,
        environment=options.environment,
        platform=options.platform,
        probe_inputs=options.probe_inputs,
        max_download_bytes_per_s=rate,
        report_gap_s=max(options.report_gap_s, 0.0),
        ca_file=tls.tls_ca_file,
        tls=tls,
    )


def _token(token_file: Path | None, env: Mapping[str, str]) -> TokenSource:
    if token_file is not None:
        return FileToken(token_file)
    if env.get(TOKEN_ENV):
        return env[TOKEN_ENV]
    if env.get(TOKEN_FILE_ENV):
        return FileToken(Path(env[TOKEN_FILE_ENV]))
    raise UsageError(
        f"no edge token: pass --token-file, or set {TOKEN_ENV} or {TOKEN_FILE_ENV} (an edge token for "
        "this server, from whoever operates the platform)"
    )


def _keys_from_env(text: str) -> tuple[str, ...]:
    if not text.strip():
        return ()
    try:
        keys = json.loads(text)
    except json.JSONDecodeError:
        return tuple(key.strip() for key in text.split(",") if key.strip())
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise UsageError(f'{PUBLIC_KEYS_ENV} must be a JSON list of keys, e.g. ["<key>"]')
    return tuple(keys)


async def serve(config: AgentConfig, stop: asyncio.Event | None = None) -> None:
    """Run the agent until `stop` is set (or, without one, until SIGINT / SIGTERM)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    await EdgeAgent(config).run(stop)


def run_agent(config: AgentConfig) -> int:
    """Run the agent in this thread until SIGINT / SIGTERM; the exit status."""
    asyncio.run(serve(config))
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "yard edge-agent") -> int:
    """The command line: parse `argv` (default: sys.argv[1:]), run the agent; the exit status."""
    parser = build_parser(prog)
    options = parser.parse_args(argv)
    logging.basicConfig(
        level=options.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = config_from(options)
    except (UsageError, ValueError) as error:  # TlsSettings names a wrong MODELYARD_TLS_* variable
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    return run_agent(config)
