"""The edge agent's download step on its own, for the download benchmark (deploy_download_bench.py).

The agent downloads an artifact in `Installer.download_step` (modelyard_edge.installer):
`download_artifact` into its home's downloads folder with its bearer token, its stall timeout and
rate cap, a progress callback, and a loop that turns progress into ReportProgress calls every 5
points. The bench builds an Installer for one home and calls that step with a reporter that counts
the reports instead of sending them (the gRPC stubs and the manifest verifier are not touched by it).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from modelyard_edge.config import AgentConfig
from modelyard_edge.installer import Installer
from modelyard_edge.versions import VersionsHome

AGENT_DOWNLOAD_SOURCE = (
    "the agent's `Installer.download_step` (download_artifact with the agent's token, stall timeout, "
    "rate cap and progress reports every 5 points, the reports counted instead of sent)"
)


class _CountingReporter:
    """Stands in for the agent's ProgressReporter: counts the reports the download step makes."""

    def __init__(self) -> None:
        self.reports = 0

    async def progress(self, status: int, phase: str, percent: int) -> None:
        self.reports += 1


async def agent_download(
    http: aiohttp.ClientSession, url: str, token: str | None, folder: Path, sha256: str, size: int
) -> Path:
    """Download `url` as the agent does into `folder` (an agent home); the verified file's path."""
    config = AgentConfig(server_id="bench-edge-1", home=folder, token=token or "", registry_public_keys=())
    installer = Installer(config, VersionsHome(folder), None, None, None, http, {})  # type: ignore[arg-type]
    return await installer.download_step(url, sha256, size, _CountingReporter(), 0)
