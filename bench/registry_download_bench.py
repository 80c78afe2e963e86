"""Registry download: MB/s through the signed, audience-bound endpoint against a plain static file server.

One random file (256 MiB, `--mb`; `--quick`: 32 MiB) served by one server process, side by side:

- signed: `modelyard_artifacts.download_app` over a local-folder blob store (the file hard-linked
  under its SHA-256, so sendfile), through a URL signed for one audience plus that audience's bearer
  token (verified signature, expiry, audience check, range-capable response);
- plain: aiohttp's `web.static` serving the same file (FileResponse, sendfile).

The client (this process, one aiohttp session, keep-alive) reads each body in 1 MiB chunks and
discards them; every download is checked to return the whole file with status 200. Two untimed
downloads of each side first; then `--runs` (default 5) of each, alternating which side goes first;
MB/s at the median. Target: signed / plain ≥ 0.8. Results: bench/results/registry-download.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from bench_host import machine, serve_signed_and_plain, write_random_file

from modelyard_artifacts.signed_urls import UrlSigner
from modelyard_artifacts.testing import FolderBlobs
from modelyard_events.signing import Ed25519Key

RESULTS = Path(__file__).resolve().parent / "results"
MB = 10**6  # decimal megabytes
READ_BYTES = 1 << 20
AUDIENCE = "edge/bench-plant"
TOKEN = "Bearer bench-edge-token"
SIDES = ("signed", "plain")
TARGET = 0.8
WARM_UPS = 2  # untimed downloads per side first: page cache, connections, CPU frequency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="file size in MiB (default 256)")
    parser.add_argument("--quick", action="store_true", help="a 32 MiB file")
    parser.add_argument("--runs", type=int, default=5, help="timed downloads per side (default 5)")
    args = parser.parse_args()
    size = (32 if args.quick else args.mb) << 20
    key = Ed25519Key.generate()
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="registry-download-bench-") as tmp:
        folder = Path(tmp)
        sha256 = write_random_file(folder / "static" / "artifact.bin", size)
        blobs = FolderBlobs(folder / "blobs")
        blobs.adopt(folder / "static" / "artifact.bin", sha256)
        runs_s = _measure_with_server(folder, sha256, key, size, args.runs)
    host = machine(load_at_start, "aiohttp")
    print(_write_results(host, {"file_bytes": size, "runs": args.runs, "read_bytes": READ_BYTES}, runs_s))


def _measure_with_server(
    folder: Path, sha256: str, key: Ed25519Key, size: int, runs: int
) -> dict[str, list[float]]:
    """Start the server process, download from both sides, stop it."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server_args = (folder, key.public_text(), AUDIENCE, TOKEN, theirs)
    server = context.Process(target=serve_signed_and_plain, args=server_args, daemon=True)
    server.start()
    try:
        if not ours.poll(60):
            raise SystemExit("the server process did not report its ports within 60 s")
        signed_port, plain_port = ours.recv()
        expires = datetime.now(UTC) + timedelta(hours=1)
        urls = {
            "signed": UrlSigner(key).mint(
                "mv-bench", sha256, AUDIENCE, expires, f"http://127.0.0.1:{signed_port}"
            ),
            "plain": f"http://127.0.0.1:{plain_port}/files/artifact.bin",
        }
        return asyncio.run(_measure(urls, size, runs))
    finally:
        ours.send("stop")
        server.join(10)
        if server.is_alive():
            server.kill()


async def _measure(urls: dict[str, str], size: int, runs: int) -> dict[str, list[float]]:
    runs_s: dict[str, list[float]] = {side: [] for side in SIDES}
    headers = {"signed": {"Authorization": TOKEN}, "plain": {}}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        for _ in range(WARM_UPS):
            for side in SIDES:
                await _download(http, urls[side], headers[side], size)
        for run in range(runs):
            for side in SIDES if run % 2 == 0 else reversed(SIDES):
                seconds = await _download(http, urls[side], headers[side], size)
                runs_s[side].append(seconds)
                _progress(f"run {run + 1}/{runs} {side}: {size / MB / seconds:,.0f} MB/s")
    return runs_s


async def _download(http: aiohttp.ClientSession, url: str, headers: dict[str, str], size: int) -> float:
    """Seconds from sending the request to the last byte read; the body is counted and discarded."""
    started = time.perf_counter()
    received = 0
    async with http.get(url, headers=headers) as response:
        if response.status != 200:
            raise SystemExit(f"{url.split('?')[0]} answered {response.status}: {await response.text()}")
        async for chunk in response.content.iter_chunked(READ_BYTES):
            received += len(chunk)
    seconds = time.perf_counter() - started
    if received != size:
        raise SystemExit(f"{url.split('?')[0]} sent {received:,} bytes, not {size:,}")
    return seconds


def _write_results(host: dict[str, Any], parameters: dict[str, Any], runs_s: dict[str, list[float]]) -> str:
    size = parameters["file_bytes"]
    median = {side: statistics.median(runs) for side, runs in runs_s.items()}
    mb_per_s = {side: size / MB / seconds for side, seconds in median.items()}
    ratio = mb_per_s["signed"] / mb_per_s["plain"]
    table = "\n".join(
        [
            "# Registry download: the signed, audience-bound endpoint vs a plain static file server",
            "",
            f"{host['cpus']} CPUs ({host['processor']}), Python {host['python']}, aiohttp {host['aiohttp']}, "
            f"{host['date']}. Load average (1 min) {host['load_1min_start']} at the start, "
            f"{host['load_1min_end']} at the end.",
            f"One {size >> 20} MiB random file, both servers in one process, loopback; median of "
            f"{parameters['runs']} downloads per side, alternating; MB = 10^6 bytes.",
            "",
            "| side | MB/s (median) | seconds per run | signed / plain | target | met? |",
            "|---|---:|---|---:|---:|:---:|",
            f"| signed URL + token (`download_app`) | {mb_per_s['signed']:,.0f} | "
            f"{', '.join(f'{s:.3f}' for s in runs_s['signed'])} | {ratio:.3f} | ≥ {TARGET} | "
            f"{'yes' if ratio >= TARGET else 'NO'} |",
            f"| plain `web.static` | {mb_per_s['plain']:,.0f} | "
            f"{', '.join(f'{s:.3f}' for s in runs_s['plain'])} | | | |",
            "",
        ]
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "registry-download.md").write_text(table)
    document = {
        "machine": host,
        "parameters": parameters,
        "sides": {
            side: {
                "runs_s": [round(s, 4) for s in runs],
                "median_s": round(median[side], 4),
                "mb_per_s": round(mb_per_s[side], 1),
            }
            for side, runs in runs_s.items()
        },
        "ratio_signed_over_plain": round(ratio, 4),
        "target": TARGET,
    }
    (RESULTS / "registry-download.json").write_text(json.dumps(document, indent=2) + "\n")
    return table


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
