"""Edge download: one agent's artifact download against a plain static file server (issue 13, item 9).

One random file (256 MiB, `--mb`; `--quick`: 32 MiB) served by one server process in two ways:

- the registry's endpoint, `modelyard_artifacts.download_app` over a local-folder blob store (the file
  hard-linked under its SHA-256: sendfile), through a URL signed for the edge plus its bearer token;
- aiohttp's `web.static` on the same file (sendfile).

Five sides, each a fresh download into an empty folder, from request to the file in place:

- **agent**: the edge agent's own download step (`deploy_agent_download.agent_download`) against the
  signed URL: `.part` file, Range resume on a cut, SHA-256 and size checked, fsync, rename;
- **plain**: the static server, the body streamed into a file in 1 MiB writes and nothing else (what
  `curl -o` does). **Target: agent / plain ≥ 0.8.**
- **agent client, static server**: the agent's step against the static server's URL, to split the
  difference into the endpoint's share (agent vs this) and the client's checks (this vs plain);
- **plain, verified**: the static server, the body hashed as it is written, then fsynced: the least
  the agent's guarantees (SHA-256 checked, durable before use) cost with this client;
- **plain, discard**: the static server, the body read and dropped (the loopback floor).

Each side runs twice: over loopback, where nothing but the two processes' CPUs limits the rate (on
a 2-core machine the server, the client and the agent's SHA-256 share them), and through a 1 Gbit/s
link (`--link-mbit`, a token-bucket relay in the server process, `bench_host.paced_relay`), the
fastest wire an edge server plausibly has, where the agent's checks must hide behind the transfer.

An untimed `os.sync()` before every download, so one side's dirty pages are not written back in
another's time; the folders are emptied between downloads. Two untimed downloads per side, then
`--runs` (default 5) per side, the order of the sides rotating run by run; MB/s at the median.
Results: bench/results/deploy-download.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from bench_host import machine, serve_signed_and_plain, write_random_file
from deploy_agent_download import AGENT_DOWNLOAD_SOURCE, agent_download

from modelyard_artifacts.signed_urls import UrlSigner
from modelyard_artifacts.testing import FolderBlobs
from modelyard_events.signing import Ed25519Key

RESULTS = Path(__file__).resolve().parent / "results"
MB = 10**6  # decimal megabytes
READ_BYTES = 1 << 20
AUDIENCE = "edge/bench-edge-1"
TOKEN = "bench-edge-token"
TARGET = 0.8
WARM_UPS = 2  # untimed downloads per side first: page cache, connections, CPU frequency
SIDES = ("agent", "plain", "agent_client_static", "plain_verified", "plain_discard")
LABELS = {
    "agent": "agent: its download step, signed URL + edge token (registry endpoint)",
    "plain": "plain: `web.static`, body written to a file (like `curl -o`)",
    "agent_client_static": "agent's download step against `web.static` (no signature, no token)",
    "plain_verified": "`web.static`, body hashed while written, then fsync (the checks' floor)",
    "plain_discard": "`web.static`, body read and discarded (the path's floor)",
}

Download = Callable[[Path], Awaitable[object]]  # one download into an empty folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="file size in MiB (default 256)")
    parser.add_argument("--quick", action="store_true", help="a 32 MiB file")
    parser.add_argument("--runs", type=int, default=5, help="timed downloads per side (default 5)")
    parser.add_argument(
        "--link-mbit", type=int, default=1000, help="the paced link's rate in Mbit/s (default 1000; 0: none)"
    )
    args = parser.parse_args()
    size = (32 if args.quick else args.mb) << 20
    key = Ed25519Key.generate()
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="deploy-download-bench-") as tmp:
        folder = Path(tmp)
        sha256 = write_random_file(folder / "static" / "artifact.bin", size)
        FolderBlobs(folder / "blobs").adopt(folder / "static" / "artifact.bin", sha256)
        link = args.link_mbit * 10**6 / 8 if args.link_mbit else None
        runs_s = _measure_with_server(folder, sha256, key, size, args.runs, link)
    parameters = {
        "file_bytes": size,
        "runs": args.runs,
        "agent_download": AGENT_DOWNLOAD_SOURCE,
        "link_mbit": args.link_mbit or None,
    }
    print(_write_results(machine(load_at_start, "aiohttp"), parameters, runs_s))


def _measure_with_server(
    folder: Path, sha256: str, key: Ed25519Key, size: int, runs: int, link_bytes_per_s: float | None
) -> dict[str, dict[str, list[float]]]:
    """Start the server process, download from every side over each path, stop it."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server_args = (folder, key.public_text(), AUDIENCE, f"Bearer {TOKEN}", theirs, link_bytes_per_s)
    server = context.Process(target=serve_signed_and_plain, args=server_args, daemon=True)
    server.start()
    try:
        if not ours.poll(60):
            raise SystemExit("the server process did not report its ports within 60 s")
        ports = ours.recv()
        expires = datetime.now(UTC) + timedelta(hours=1)
        paths = {"loopback": ports[:2]}
        if link_bytes_per_s is not None:
            paths[f"{link_bytes_per_s * 8 / 10**6:,.0f} Mbit/s link"] = ports[2:]
        results = {}
        for path, (signed_port, plain_port) in paths.items():
            signed_url = UrlSigner(key).mint(
                "mv-bench", sha256, AUDIENCE, expires, f"http://127.0.0.1:{signed_port}"
            )
            plain_url = f"http://127.0.0.1:{plain_port}/files/artifact.bin"
            _progress(f"--- {path}")
            results[path] = asyncio.run(
                _measure(folder / "downloads", signed_url, plain_url, sha256, size, runs)
            )
        return results
    finally:
        ours.send("stop")
        server.join(10)
        if server.is_alive():
            server.kill()


async def _measure(
    downloads: Path, signed_url: str, plain_url: str, sha256: str, size: int, runs: int
) -> dict[str, list[float]]:
    runs_s: dict[str, list[float]] = {side: [] for side in SIDES}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        sides: dict[str, Download] = {
            "agent": lambda folder: agent_download(http, signed_url, TOKEN, folder, sha256, size),
            "plain": lambda folder: _plain_to_file(http, plain_url, folder / "artifact.bin", size),
            "agent_client_static": lambda folder: agent_download(http, plain_url, None, folder, sha256, size),
            "plain_verified": lambda folder: _plain_verified(
                http, plain_url, folder / "artifact.bin", sha256
            ),
            "plain_discard": lambda folder: _plain_discard(http, plain_url, size),
        }
        for _ in range(WARM_UPS):
            for side in SIDES:
                await _timed(sides[side], downloads)
        for run in range(runs):
            order = SIDES[run % len(SIDES) :] + SIDES[: run % len(SIDES)]
            for side in order:
                seconds = await _timed(sides[side], downloads)
                runs_s[side].append(seconds)
                _progress(f"run {run + 1}/{runs} {side}: {size / MB / seconds:,.0f} MB/s")
    return runs_s


async def _timed(download: Download, downloads: Path) -> float:
    """Seconds of one download into an empty folder, after an untimed sync; the folder is emptied after."""
    await asyncio.to_thread(_empty_and_sync, downloads)
    started = time.perf_counter()
    await download(downloads)
    seconds = time.perf_counter() - started
    shutil.rmtree(downloads)
    return seconds


def _empty_and_sync(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.sync()


async def _plain_to_file(http: aiohttp.ClientSession, url: str, dest: Path, size: int) -> None:
    received = 0
    async with http.get(url) as response:
        _check_status(url, response.status)
        with dest.open("wb") as file:
            async for chunk in response.content.iter_chunked(READ_BYTES):
                file.write(chunk)
                received += len(chunk)
    _check_size(url, received, size)


async def _plain_verified(http: aiohttp.ClientSession, url: str, dest: Path, sha256: str) -> None:
    """What the agent's checks cost at least: one SHA-256 pass (in the stream, no re-read) and an fsync."""
    digest = hashlib.sha256()
    async with http.get(url) as response:
        _check_status(url, response.status)
        with dest.open("wb") as file:
            async for chunk in response.content.iter_chunked(READ_BYTES):
                file.write(chunk)
                digest.update(chunk)
            await asyncio.to_thread(os.fsync, file.fileno())
    if digest.hexdigest() != sha256:
        raise SystemExit(f"{url} sent other bytes than the file's")


async def _plain_discard(http: aiohttp.ClientSession, url: str, size: int) -> None:
    received = 0
    async with http.get(url) as response:
        _check_status(url, response.status)
        async for chunk in response.content.iter_chunked(READ_BYTES):
            received += len(chunk)
    _check_size(url, received, size)


def _check_status(url: str, status: int) -> None:
    if status != 200:
        raise SystemExit(f"{url} answered {status}")


def _check_size(url: str, received: int, size: int) -> None:
    if received != size:
        raise SystemExit(f"{url} sent {received:,} bytes, not {size:,}")


def _write_results(
    host: dict[str, Any], parameters: dict[str, Any], runs_by_path: dict[str, dict[str, list[float]]]
) -> str:
    size = parameters["file_bytes"]
    lines = [
        "# Edge download: one agent's download step vs a plain static file server",
        "",
        f"{host['cpus']} CPUs ({host['processor']}), Python {host['python']}, aiohttp {host['aiohttp']}, "
        f"{host['date']}. Load average (1 min) {host['load_1min_start']} at the start, "
        f"{host['load_1min_end']} at the end.",
        f"One {size >> 20} MiB random file, both servers in one process on this machine; each download "
        f"into an empty folder after an untimed `os.sync()`; median of {parameters['runs']} downloads "
        "per side, order rotating; MB = 10^6 bytes.",
        f"Agent's download step: {parameters['agent_download']}.",
        "",
    ]
    paths = {}
    for path, runs_s in runs_by_path.items():
        table, summary = _path_table(size, runs_s)
        lines += [f"## {path}", "", *table, ""]
        paths[path] = summary
    lines += [
        "agent / plain is the target's ratio (a client that only writes the file); agent / plain "
        "verified compares the agent with a client giving its guarantees (the SHA-256 checked and "
        "the file durable before it is used). Over loopback the rate is bound by CPU: on 2 cores the "
        "server, the client and the SHA-256 (about 0.15 CPU-s per 256 MiB) share them. Over the "
        "link the wire is the bound, as on an edge.",
        "",
    ]
    text = "\n".join(lines)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "deploy-download.md").write_text(text)
    document = {"machine": host, "parameters": parameters, "target": TARGET, "paths": paths}
    (RESULTS / "deploy-download.json").write_text(json.dumps(document, indent=2) + "\n")
    return text


def _path_table(size: int, runs_s: dict[str, list[float]]) -> tuple[list[str], dict[str, Any]]:
    median = {side: statistics.median(runs) for side, runs in runs_s.items()}
    mb_per_s = {side: size / MB / seconds for side, seconds in median.items()}
    ratio = mb_per_s["agent"] / mb_per_s["plain"]
    like_for_like = mb_per_s["agent"] / mb_per_s["plain_verified"]
    rows = []
    for side in SIDES:
        of_plain = mb_per_s[side] / mb_per_s["plain"]
        of_verified = mb_per_s[side] / mb_per_s["plain_verified"]
        verdict = f"≥ {TARGET} | {'yes' if ratio >= TARGET else 'NO'}" if side == "agent" else " | "
        runs = ", ".join(f"{s:.3f}" for s in runs_s[side])
        rate = f"{mb_per_s[side]:,.0f}"
        rows.append(f"| {LABELS[side]} | {rate} | {runs} | {of_plain:.3f} | {verdict} | {of_verified:.3f} |")
    table = [
        "| side | MB/s (median) | seconds per run | / plain | target | met? | / plain verified |",
        "|---|---:|---|---:|---:|:---:|---:|",
        *rows,
        "",
        f"agent / plain = {ratio:.3f}; agent / plain verified = {like_for_like:.3f}.",
    ]
    summary = {
        "sides": {
            side: {
                "label": LABELS[side],
                "runs_s": [round(s, 4) for s in runs],
                "median_s": round(median[side], 4),
                "mb_per_s": round(mb_per_s[side], 1),
            }
            for side, runs in runs_s.items()
        },
        "ratio_agent_over_plain": round(ratio, 4),
        "ratio_agent_over_plain_verified": round(like_for_like, 4),
    }
    return table, summary


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
