"""What every benchmark records about its run, and the random payloads the download benchmarks serve."""

from __future__ import annotations

import asyncio
import hashlib
import os
import platform
from datetime import UTC, datetime
from importlib.metadata import version
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from aiohttp import web

from modelyard_artifacts.http_server import download_app, serve_downloads
from modelyard_artifacts.signed_urls import UrlVerifier
from modelyard_artifacts.testing import FolderBlobs

READ_BYTES = 1 << 20


def machine(load_at_start: tuple[float, float, float], *packages: str) -> dict[str, Any]:
    """CPUs, processor, Python, the versions of `packages`, load before and after, and the time."""
    return {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        **{package: version(package) for package in packages},
        "load_1min_start": round(load_at_start[0], 2),
        "load_1min_end": round(os.getloadavg()[0], 2),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_random_file(path: Path, size: int) -> str:
    """`size` random bytes at `path` (its folder must not exist yet); their SHA-256."""
    path.parent.mkdir(parents=True)
    digest = hashlib.sha256()
    with path.open("wb") as file:
        for offset in range(0, size, READ_BYTES):
            chunk = os.urandom(min(READ_BYTES, size - offset))
            digest.update(chunk)
            file.write(chunk)
    return digest.hexdigest()


def serve_signed_and_plain(
    folder: Path, public_key: str, audience: str, authorization: str, conn: Connection
) -> None:
    """A server process for the download benchmarks: the registry's signed download endpoint over
    `folder/blobs` (a request bearing `authorization` is `audience`) and aiohttp's `web.static`
    over `folder/static`, both on free ports of 127.0.0.1; sends (signed port, plain port) on `conn`
    and serves until it receives anything."""

    async def authenticate(header: str | None) -> str | None:
        return audience if header == authorization else None

    async def serve() -> None:
        signed = download_app(
            FolderBlobs(folder / "blobs"), UrlVerifier.from_texts([public_key]), authenticate
        )
        plain = web.Application()
        plain.router.add_static("/files", folder / "static")
        async with serve_downloads(signed, "127.0.0.1", 0) as signed_port:
            runner = web.AppRunner(plain, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            conn.send((signed_port, runner.addresses[0][1]))
            await asyncio.to_thread(conn.recv)
            await runner.cleanup()

    asyncio.run(serve())
