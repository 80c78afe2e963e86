"""download_artifact against servers that cut, stall, ignore ranges, fail and refuse."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from artifact_support import EXPIRES, NOW, REGISTRY_KEY

from modelyard_artifacts.byte_ranges import requested_span
from modelyard_artifacts.download import DownloadFailed, DownloadRefused, download_artifact
from modelyard_artifacts.http_server import download_app, serve_downloads
from modelyard_artifacts.integrity import ArtifactMismatch
from modelyard_artifacts.signed_urls import UrlSigner, UrlVerifier
from modelyard_artifacts.testing import MemoryBlobs

DATA = hashlib.sha256(b"artifact").digest() * 100_000  # 3.2 MB
SHA = hashlib.sha256(DATA).hexdigest()
CUT = 1_000_000
QUERY = "?sig=secret-signature"


@dataclass
class ScriptedServer:
    """Serves DATA with ranges; the n-th request behaves as `script[n]` (then "ok")."""

    script: list[str | int]
    requests: list[str | None] = field(default_factory=list)  # each request's Range header
    received: asyncio.Event = field(default_factory=asyncio.Event)  # the client holds CUT bytes
    released: asyncio.Event = field(default_factory=asyncio.Event)  # stalled answers may end

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.headers.get("Range"))
        act = self.script[len(self.requests) - 1] if len(self.requests) <= len(self.script) else "ok"
        if isinstance(act, int):
            return web.Response(status=act, text=f"scripted {act}")
        span = requested_span(None if act == "ignore-range" else request.headers.get("Range"), len(DATA))
        if act == "resume-from-zero":  # a broken server: "206" with the bytes from 0 whatever was asked
            span = requested_span("bytes=0-", len(DATA))
        response = web.StreamResponse(status=206 if span.partial else 200)
        response.content_length = span.length
        if span.partial:
            response.headers["Content-Range"] = span.content_range()
        await response.prepare(request)
        body = DATA[span.start : span.end]
        if act in ("cut", "stall"):
            await response.write(body[:CUT])
            await asyncio.wait_for(self.received.wait(), 10)
            if act == "stall":
                await self.released.wait()
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write(body)
        await response.write_eof()
        return response


Serve = Callable[[list[str | int]], Awaitable[tuple[str, ScriptedServer]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """serve(script) → (url, server): a ScriptedServer on a free port until the test ends."""
    started: list[tuple[web.AppRunner, ScriptedServer]] = []

    async def start(script: list[str | int]) -> tuple[str, ScriptedServer]:
        server = ScriptedServer(script)
        app = web.Application()
        app.router.add_get("/v1/artifacts/{version_id}", server.handle)
        runner = web.AppRunner(app, shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        started.append((runner, server))
        return f"http://127.0.0.1:{runner.addresses[0][1]}/v1/artifacts/mv-1{QUERY}", server

    yield start
    for runner, server in started:
        server.released.set()
        await runner.cleanup()


async def _download(
    url: str,
    dest: Path,
    server: ScriptedServer,
    *,
    expected_sha256: str = SHA,
    expected_size: int = len(DATA),
    attempts: int = 8,
    stall_timeout_s: float = 30.0,
) -> Path:
    def progress(on_disk: int, total: int | None) -> None:
        if on_disk >= CUT:
            server.received.set()

    return await download_artifact(
        url,
        dest,
        expected_sha256=expected_sha256,
        expected_size=expected_size,
        progress=progress,
        attempts=attempts,
        backoff_s=0.01,
        stall_timeout_s=stall_timeout_s,
    )


def _left_in(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


class TestResuming:
    async def test_a_cut_connection_resumes_where_the_file_stopped(
        self, serve: Serve, tmp_path: Path
    ) -> None:
        url, server = await serve(["cut"])
        assert await _download(url, tmp_path / "model.bin", server) == tmp_path / "model.bin"
        assert (tmp_path / "model.bin").read_bytes() == DATA
        assert server.requests == [None, f"bytes={CUT}-"]
        assert not (tmp_path / "model.bin.part").exists()

    async def test_a_stalled_connection_is_given_up_and_resumed(self, serve: Serve, tmp_path: Path) -> None:
        url, server = await serve(["stall"])
        await _download(url, tmp_path / "model.bin", server, stall_timeout_s=0.3)
        assert (tmp_path / "model.bin").read_bytes() == DATA
        assert server.requests == [None, f"bytes={CUT}-"]

    async def test_a_server_answering_200_to_a_range_restarts_from_zero(
        self, serve: Serve, tmp_path: Path
    ) -> None:
        url, server = await serve(["cut", "ignore-range"])
        await _download(url, tmp_path / "model.bin", server)
        assert (tmp_path / "model.bin").read_bytes() == DATA
        assert server.requests == [None, f"bytes={CUT}-"]

    async def test_a_206_from_another_offset_restarts_from_zero(self, serve: Serve, tmp_path: Path) -> None:
        url, server = await serve(["cut", "resume-from-zero"])
        await _download(url, tmp_path / "model.bin", server)
        assert (tmp_path / "model.bin").read_bytes() == DATA
        assert server.requests == [None, f"bytes={CUT}-", None]

    async def test_a_part_left_by_an_earlier_run_is_resumed(self, serve: Serve, tmp_path: Path) -> None:
        url, server = await serve([])
        (tmp_path / "model.bin.part").write_bytes(DATA[:1234])
        await _download(url, tmp_path / "model.bin", server)
        assert (tmp_path / "model.bin").read_bytes() == DATA
        assert server.requests == ["bytes=1234-"]

    async def test_a_damaged_part_left_by_an_earlier_run_is_caught_by_the_sha256(
        self, serve: Serve, tmp_path: Path
    ) -> None:
        # the digest of a resumed download covers the bytes already on disk, read back, not trusted
        url, server = await serve([])
        (tmp_path / "model.bin.part").write_bytes(b"X" + DATA[1:1234])
        with pytest.raises(ArtifactMismatch, match=f"expected SHA-256 {SHA}"):
            await _download(url, tmp_path / "model.bin", server)
        assert _left_in(tmp_path) == []

    async def test_a_complete_part_left_by_an_earlier_run_is_checked_not_fetched(
        self, serve: Serve, tmp_path: Path
    ) -> None:
        url, server = await serve([])
        (tmp_path / "model.bin.part").write_bytes(DATA[:-1] + b"X")
        with pytest.raises(ArtifactMismatch, match=f"expected SHA-256 {SHA}"):
            await _download(url, tmp_path / "model.bin", server)
        assert server.requests == []
        (tmp_path / "model.bin.part").write_bytes(DATA)
        await _download(url, tmp_path / "model.bin", server)
        assert (tmp_path / "model.bin").read_bytes() == DATA
        assert server.requests == []

    async def test_server_errors_are_retried(self, serve: Serve, tmp_path: Path) -> None:
        url, server = await serve([503, 500, 429])
        await _download(url, tmp_path / "model.bin", server)
        assert (tmp_path / "model.bin").read_bytes() == DATA
        assert len(server.requests) == 4


class TestGivingUp:
    async def test_after_the_attempts_the_error_names_url_bytes_attempts_and_cause(
        self, serve: Serve, tmp_path: Path
    ) -> None:
        url, server = await serve([503] * 10)
        with pytest.raises(DownloadFailed) as failed:
            await _download(url, tmp_path / "model.bin", server, attempts=3)
        message = str(failed.value)
        assert message.startswith(
            f"GET {url.removesuffix(QUERY)} failed after 3 attempts with 0 bytes received"
        )
        assert "last error: _TryAgain: HTTP 503: scripted 503" in message
        assert "secret-signature" not in message
        assert len(server.requests) == 3

    @pytest.mark.parametrize("status", [403, 404, 400])
    async def test_a_refusal_is_not_retried(self, serve: Serve, tmp_path: Path, status: int) -> None:
        url, server = await serve([status])
        with pytest.raises(
            DownloadRefused, match=f"refused with HTTP {status}: scripted {status}"
        ) as refused:
            await _download(url, tmp_path / "model.bin", server)
        assert refused.value.status == status
        assert "secret-signature" not in str(refused.value)
        assert len(server.requests) == 1

    async def test_a_sha256_mismatch_is_caught_and_the_part_removed(
        self, serve: Serve, tmp_path: Path
    ) -> None:
        url, server = await serve([])
        with pytest.raises(ArtifactMismatch, match=f"expected SHA-256 {'0' * 64}, got SHA-256 {SHA}"):
            await _download(url, tmp_path / "model.bin", server, expected_sha256="0" * 64)
        assert _left_in(tmp_path) == []

    @pytest.mark.parametrize(
        ("size", "says"), [(len(DATA) + 1, "got 3,200,000 bytes"), (len(DATA) - 1, "more than that")]
    )
    async def test_a_size_mismatch_is_caught_and_the_part_removed(
        self, serve: Serve, tmp_path: Path, size: int, says: str
    ) -> None:
        url, server = await serve([])
        with pytest.raises(ArtifactMismatch, match=says):
            await _download(url, tmp_path / "model.bin", server, expected_size=size)
        assert _left_in(tmp_path) == []


async def test_through_the_registry_endpoint_with_the_audiences_token(tmp_path: Path) -> None:
    blobs = MemoryBlobs()
    blobs.put(DATA)

    async def authenticate(authorization: str | None) -> str | None:
        return "edge/plant-7" if authorization == "Bearer t7" else None

    app = download_app(blobs, UrlVerifier([REGISTRY_KEY.public_key]), authenticate, clock=lambda: NOW)
    async with serve_downloads(app, "127.0.0.1", 0) as port:
        signer = UrlSigner(REGISTRY_KEY)
        url = signer.mint("mv-1", SHA, "edge/plant-7", EXPIRES, f"http://127.0.0.1:{port}", now=NOW)
        seen: list[int] = []
        await download_artifact(
            url,
            tmp_path / "model.bin",
            expected_sha256=SHA,
            expected_size=len(DATA),
            headers={"Authorization": "Bearer t7"},
            progress=lambda on_disk, total: seen.append(on_disk) if total == len(DATA) else None,
        )
        assert (tmp_path / "model.bin").read_bytes() == DATA
        assert seen[-1] == len(DATA)
        with pytest.raises(DownloadRefused, match="403: this URL needs the bearer token"):
            await download_artifact(url, tmp_path / "other.bin", expected_sha256=SHA, expected_size=None)


class TestRateLimit:
    async def test_the_download_takes_as_long_as_the_rate_allows(self, serve: Serve, tmp_path: Path) -> None:
        url, _ = await serve([])
        rate = len(DATA) / 0.8  # the whole artifact in about 0.8 s
        reads: list[int] = []
        started = asyncio.get_running_loop().time()
        await download_artifact(
            url,
            tmp_path / "model.bin",
            expected_sha256=SHA,
            expected_size=len(DATA),
            progress=lambda on_disk, total: reads.append(on_disk),
            rate_limit_bytes_per_s=rate,
        )
        elapsed = asyncio.get_running_loop().time() - started
        assert (tmp_path / "model.bin").read_bytes() == DATA
        assert elapsed >= 0.6  # unthrottled, 3.2 MB from localhost take a few milliseconds
        assert len(reads) >= 4  # reads of about a quarter second's bytes each
        assert all(b - a <= int(rate / 4) for a, b in zip([0, *reads], reads, strict=False))

    async def test_a_rate_that_is_not_positive_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="rate_limit_bytes_per_s must be positive"):
            await download_artifact(
                "http://127.0.0.1:1/x",
                tmp_path / "m",
                expected_sha256=SHA,
                expected_size=None,
                rate_limit_bytes_per_s=0,
            )
