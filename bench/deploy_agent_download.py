"""The edge agent's download step on its own, for the download benchmark (deploy_download_bench.py).

The agent downloads an artifact in `Installer._fetch` (modelyard_edge.installer): `download_artifact`
into its home's downloads folder with its bearer token, its stall timeout and rate cap, a progress
callback, and a loop that turns progress into ReportProgress calls every 5 points. The step has no
public entry of its own, so the bench builds an Installer for one home and calls `_fetch` with a
reporter that counts the reports instead of sending them (the gRPC stubs and the manifest verifier
are not touched by that step). If the agent's code no longer has that shape, the bench falls back to
`download_artifact` with the agent's default settings and says so in its results
(`AGENT_DOWNLOAD_SOURCE`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from modelyard_artifacts.download import download_artifact
from modelyard_edge.config import AgentConfig

AGENT_DOWNLOAD_SOURCE: str
_Installer: Any

try:
    from modelyard_edge.installer import Installer as _Installer
    from modelyard_edge.versions import VersionsHome

    if not hasattr(_Installer, "_fetch"):
        raise ImportError("modelyard_edge.installer.Installer has no _fetch")
    AGENT_DOWNLOAD_SOURCE = (
        "the agent's `Installer._fetch` (download_artifact with the agent's token, stall timeout, "
        "rate cap and progress reports every 5 points, the reports counted instead of sent)"
    )
except ImportError as missing:
    _Installer = None
    AGENT_DOWNLOAD_SOURCE = (
        f"`download_artifact` with the agent's default settings (the agent's own step could not be "
        f"called: {missing})"
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
    if _Installer is None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await download_artifact(
            url,
            folder / "downloads" / sha256,
            expected_sha256=sha256,
            expected_size=size,
            headers=headers,
            progress=lambda _on_disk, _total: None,
            stall_timeout_s=config.download_stall_timeout_s,
            session=http,
            rate_limit_bytes_per_s=config.max_download_bytes_per_s,
        )
    installer = _Installer(config, VersionsHome(folder), None, None, None, http, {})
    path: Path = await installer._fetch(url, sha256, size, _CountingReporter(), 0)
    return path
