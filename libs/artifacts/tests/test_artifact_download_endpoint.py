"""The registry's download endpoint on a real socket: signed URL + the audience's token → bytes."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from artifact_support import EXPIRES, NOW, REGISTRY_KEY

from modelyard_artifacts.http_server import download_app, serve_downloads
from modelyard_artifacts.signed_urls import UrlSigner, UrlVerifier
from modelyard_artifacts.testing import FolderBlobs, MemoryBlobs

BLOB = hashlib.sha256(b"seed").digest() * 100_000  # 3.2 MB
SHA = hashlib.sha256(BLOB).hexdigest()
EDGE = "edge/plant-7"
TOKENS = {"Bearer token-of-plant-7": EDGE, "Bearer token-of-plant-8": "edge/plant-8"}
AS_EDGE = {"Authorization": "Bearer token-of-plant-7"}


async def authenticate(authorization: str | None) -> str | None:
    """The subject a bearer token names (the real one checks an EdDSA token)."""
    return TOKENS.get(authorization or "")


@dataclass
class Endpoint:
    base: str
    http: aiohttp.ClientSession

    def url(
        self, sha256: str = SHA, audience: str = EDGE, expires: datetime = EXPIRES, now: datetime = NOW
    ) -> str:
        return UrlSigner(REGISTRY_KEY).mint("mv-1", sha256, audience, expires, self.base, now=now)


@pytest.fixture(params=["streamed", "sendfile"])
async def endpoint(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Endpoint]:
    """The endpoint over a store that streams (like S3) or one that has local files (sendfile)."""
    blobs = MemoryBlobs() if request.param == "streamed" else FolderBlobs(tmp_path / "blobs")
    blobs.put(BLOB)
    app = download_app(blobs, UrlVerifier([REGISTRY_KEY.public_key]), authenticate, clock=lambda: NOW)
    async with serve_downloads(app, "127.0.0.1", 0) as port, aiohttp.ClientSession() as http:
        yield Endpoint(f"http://127.0.0.1:{port}", http)


class TestServing:
    async def test_the_audience_downloads_the_whole_blob(self, endpoint: Endpoint) -> None:
        async with endpoint.http.get(endpoint.url(), headers=AS_EDGE) as response:
            assert response.status == 200
            assert await response.read() == BLOB
            assert response.headers["ETag"] == f'"{SHA}"'
            assert response.headers["Accept-Ranges"] == "bytes"
            assert response.headers["Content-Length"] == str(len(BLOB))

    async def test_head_answers_the_headers_without_a_body(self, endpoint: Endpoint) -> None:
        async with endpoint.http.head(endpoint.url(), headers=AS_EDGE) as response:
            assert response.status == 200
            assert response.headers["Content-Length"] == str(len(BLOB))
            assert await response.read() == b""

    @pytest.mark.parametrize(
        ("range_", "start", "end"),
        [
            ("bytes=100-199", 100, 200),
            ("bytes=3000000-", 3_000_000, len(BLOB)),
            ("bytes=-1000", len(BLOB) - 1000, len(BLOB)),
            ("bytes=0-", 0, len(BLOB)),
        ],
    )
    async def test_a_range_is_answered_206_with_its_bytes(
        self, endpoint: Endpoint, range_: str, start: int, end: int
    ) -> None:
        async with endpoint.http.get(endpoint.url(), headers=AS_EDGE | {"Range": range_}) as response:
            assert response.status == 206
            assert response.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(BLOB)}"
            assert await response.read() == BLOB[start:end]

    async def test_a_range_past_the_end_is_416_naming_the_size(self, endpoint: Endpoint) -> None:
        headers = AS_EDGE | {"Range": f"bytes={len(BLOB)}-"}
        async with endpoint.http.get(endpoint.url(), headers=headers) as response:
            assert response.status == 416
            assert response.headers["Content-Range"] == f"bytes */{len(BLOB)}"

    async def test_a_range_for_another_etag_gets_the_whole_blob(self, endpoint: Endpoint) -> None:
        headers = AS_EDGE | {"Range": "bytes=0-9", "If-Range": '"another"'}
        async with endpoint.http.get(endpoint.url(), headers=headers) as response:
            assert response.status == 200
            assert len(await response.read()) == len(BLOB)

    async def test_a_url_to_a_blob_the_store_lacks_is_404(self, endpoint: Endpoint) -> None:
        async with endpoint.http.get(endpoint.url(sha256="0" * 64), headers=AS_EDGE) as response:
            assert response.status == 404
            assert "holds no blob" in await response.text()

    async def test_health_is_ok(self, endpoint: Endpoint) -> None:
        async with endpoint.http.get(f"{endpoint.base}/healthz") as response:
            assert response.status == 200


class TestRefusals:
    async def _refusal(self, endpoint: Endpoint, url: str, headers: dict[str, str]) -> str:
        async with endpoint.http.get(url, headers=headers) as response:
            assert response.status == 403
            return await response.text()

    async def test_an_expired_url_is_403(self, endpoint: Endpoint) -> None:
        url = endpoint.url(expires=NOW - timedelta(seconds=1), now=NOW - timedelta(hours=1))
        assert "expired" in await self._refusal(endpoint, url, AS_EDGE)

    async def test_an_altered_signature_is_403(self, endpoint: Endpoint) -> None:
        url = endpoint.url()
        altered = url[:-1] + ("A" if url[-1] != "A" else "B")
        assert "signature does not match" in await self._refusal(endpoint, altered, AS_EDGE)

    async def test_another_version_in_the_path_is_403(self, endpoint: Endpoint) -> None:
        url = endpoint.url().replace("/v1/artifacts/mv-1?", "/v1/artifacts/mv-2?")
        assert "signature does not match" in await self._refusal(endpoint, url, AS_EDGE)

    async def test_a_url_without_its_signature_is_403(self, endpoint: Endpoint) -> None:
        url = endpoint.url().split("&sig=")[0]
        assert "lacks sig" in await self._refusal(endpoint, url, AS_EDGE)

    async def test_another_callers_token_is_403(self, endpoint: Endpoint) -> None:
        headers = {"Authorization": "Bearer token-of-plant-8"}
        assert "issued to another caller" in await self._refusal(endpoint, endpoint.url(), headers)

    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer forged"}])
    async def test_no_valid_token_is_403(self, endpoint: Endpoint, headers: dict[str, str]) -> None:
        assert "needs the bearer token" in await self._refusal(endpoint, endpoint.url(), headers)


async def test_without_authenticate_the_url_alone_grants_the_download() -> None:
    blobs = MemoryBlobs()
    blobs.put(BLOB)
    app = download_app(blobs, UrlVerifier([REGISTRY_KEY.public_key]), None, clock=lambda: NOW)
    async with serve_downloads(app, "127.0.0.1", 0) as port, aiohttp.ClientSession() as http:
        url = UrlSigner(REGISTRY_KEY).mint("mv-1", SHA, EDGE, EXPIRES, f"http://127.0.0.1:{port}", now=NOW)
        async with http.get(url) as response:
            assert response.status == 200
            assert await response.read() == BLOB


async def test_the_access_log_leaves_out_the_signature(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        async with endpoint.http.get(endpoint.url(), headers=AS_EDGE) as response:
            await response.read()
    lines = [record.getMessage() for record in caplog.records if record.name == "aiohttp.access"]
    assert any('"GET /v1/artifacts/mv-1" 200' in line for line in lines)
    assert not any("sig=" in line for line in lines)
