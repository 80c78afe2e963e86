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
_RELAY_BURST_S = 0.01
_RELAY_BYTES = 1 << 20  # reads this large keep the relay's pauses in milliseconds, not below a timer tick


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
    folder: Path,
    public_key: str,
    audience: str,
    authorization: str,
    conn: Connection,
    link_bytes_per_s: float | None = None,
) -> None:
    """A server process for the download benchmarks: the registry's signed download endpoint over
    `folder/blobs` (a request bearing `authorization` is `audience`) and aiohttp's `web.static`
    over `folder/static`, both on free ports of 127.0.0.1; sends (signed port, plain port) on `conn`
    and serves until it receives anything. With `link_bytes_per_s`, it also relays each of the two
    through a link of that rate (`paced_relay`) and sends the relays' ports after the first two."""

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
            ports: tuple[int, ...] = (signed_port, runner.addresses[0][1])
            relays = []
            if link_bytes_per_s is not None:
                relays = [await paced_relay(port, link_bytes_per_s) for port in ports]
                ports += tuple(relay.sockets[0].getsockname()[1] for relay in relays)
            conn.send(ports)
            await asyncio.to_thread(conn.recv)
            for relay in relays:
                relay.close()
            await runner.cleanup()

    asyncio.run(serve())


async def paced_relay(upstream_port: int, bytes_per_s: float) -> asyncio.Server:
    """A TCP relay on a free port of 127.0.0.1 to `upstream_port`, sending the answers at no more
    than `bytes_per_s` per connection (a token bucket 10 ms deep: it absorbs a sleep's overshoot, and
    an idle kept-alive connection earns no more): a link of that speed in front of a server on the
    same machine."""

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, paced: bool) -> None:
        loop = asyncio.get_running_loop()
        free_at = loop.time()
        try:
            while data := await source.read(_RELAY_BYTES):
                sink.write(data)
                await sink.drain()
                if paced:
                    free_at = max(free_at, loop.time() - _RELAY_BURST_S) + len(data) / bytes_per_s
                    if (wait := free_at - loop.time()) > 0:
                        await asyncio.sleep(wait)
        except ConnectionError:
            pass
        finally:
            sink.close()

    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", upstream_port, limit=_RELAY_BYTES
        )
        await asyncio.gather(
            pipe(reader, upstream_writer, paced=False), pipe(upstream_reader, writer, paced=True)
        )

    return await asyncio.start_server(connect, "127.0.0.1", 0, limit=_RELAY_BYTES)
