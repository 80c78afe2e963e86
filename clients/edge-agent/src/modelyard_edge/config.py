"""What one edge agent is: its server id, where it keeps its models, whom it calls and trusts."""

from __future__ import annotations

import functools
import platform as platform_module
import socket
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from modelyard_grpc.client import TokenSource
from modelyard_grpc.tls import TlsSettings

DEFAULT_DEPLOY_TARGET = "127.0.0.1:50056"
DEFAULT_REGISTRY_TARGET = "127.0.0.1:50054"
DEFAULT_ENVIRONMENT = "production"
_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """One edge server's agent. `registry_public_keys` are the pinned registry keys (base64url, as in
    MODELYARD_REGISTRY_PUBLIC_KEYS): nothing installs or starts without a manifest one of them signed."""

    server_id: str
    home: Path
    token: TokenSource  # an edge token: role "edge", subject = server_id
    registry_public_keys: tuple[str, ...]
    deploy_target: str = DEFAULT_DEPLOY_TARGET
    registry_target: str = DEFAULT_REGISTRY_TARGET
    environment: str = DEFAULT_ENVIRONMENT
    platform: str = ""  # "" = this machine's, e.g. linux/amd64
    hostname: str = ""  # "" = this machine's
    probe_inputs: Path | None = None  # .npy or .jsonl; None = generated from each model's config
    max_download_bytes_per_s: float | None = None
    ca_file: Path | None = None  # CA of https download URLs (besides the system's)
    tls: TlsSettings | None = None  # gRPC over TLS; None = plaintext
    device: str = "cpu"
    call_timeout_s: float = 30.0
    report_gap_s: float = 1.0  # a phase reported within this of the last report of its status is held
    download_stall_timeout_s: float = 30.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0

    @property
    def resolved_platform(self) -> str:
        return self.platform or detect_platform()

    @property
    def resolved_hostname(self) -> str:
        return self.hostname or socket.gethostname()


@functools.cache
def bearer_metadata(token: TokenSource) -> tuple[tuple[str, str]]:
    """The agent's token as per-call metadata: its channels carry no token of their own, so one channel
    can serve many agents (a benchmark runs hundreds in one process), each calling as itself."""
    return (("authorization", f"Bearer {token() if callable(token) else token}"),)


@functools.cache
def detect_platform() -> str:
    """This machine as deploy-svc names platforms: `<os>/<architecture>`, e.g. linux/amd64."""
    machine = platform_module.machine().lower()
    return f"{platform_module.system().lower()}/{_ARCHITECTURES.get(machine, machine)}"


@functools.cache
def edge_version() -> str:
    """The agent's own version (the package's), which deploy-svc compares with a version's minimum."""
    try:
        return metadata.version("modelyard-edge-agent")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def default_home(server_id: str) -> Path:
    return Path(".modelyard") / "edge" / server_id
