"""The registry's artifact download endpoint: signed URLs in, blob bytes out, with range requests.

`GET|HEAD /v1/artifacts/{version_id}?sha256=…&aud=…&exp=…&kid=…&sig=…` serves the blob the URL's
signature names to the one caller it names (see signed_urls.py), from the content-addressed store:
with `sendfile` when the blob is a local file, streamed in chunks otherwise (S3). One byte range per
request (206 + Content-Range; 416 when unsatisfiable), so an edge resumes a cut download where it
stopped. The ETag is the blob's SHA-256: a blob's bytes never change under its name.

The endpoint does not rehash a blob per request (that would read every artifact twice): the
registry checks a blob's SHA-256 when it copies it in, and the receiver checks it again before
using it (`download_artifact`, `yard models verify`, the edge agent against the signed manifest).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from aiohttp import hdrs, web
from aiohttp.abc import AbstractAccessLogger

from modelyard_artifacts.byte_ranges import ByteSpan, RangeNotSatisfiable, requested_span
from modelyard_artifacts.signed_urls import DownloadGrant, UrlRefused, UrlVerifier
from modelyard_events.domain_errors import NotFound

log = logging.getLogger(__name__)

Authenticate = Callable[[str | None], Awaitable[str | None]]
Clock = Callable[[], datetime]
_SEND_CHUNK_BYTES = 1 << 20


class ArtifactBlobs(Protocol):
    """The part of the content-addressed blob store (modelyard_blobs) the endpoint reads."""

    async def size(self, sha256: str) -> int:
        """The blob's size in bytes; NotFound when the store does not hold it."""
        ...

    def local_path(self, sha256: str) -> Path | None:
        """The blob's file when the store keeps it on a local disk (sendfile), None otherwise."""
        ...

    def chunks(
        self, sha256: str, chunk_bytes: int = 1 << 20, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes [start, end) of the blob (end exclusive, None for the end); NotFound when absent."""
        ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


def download_app(
    blobs: ArtifactBlobs,
    verifier: UrlVerifier,
    authenticate: Authenticate | None = None,
    clock: Clock = _utc_now,
) -> web.Application:
    """The download endpoint and `GET /healthz`.

    Every refusal of the URL is a 403 whose text says why. With `authenticate` (the Authorization
    header's value → the caller's subject, or None), the caller must also be the URL's audience;
    without it, the URL alone is the credential until it expires.
    """

    async def download(request: web.Request) -> web.StreamResponse:
        try:
            grant = verifier.check(request.match_info["version_id"], request.query, clock())
        except UrlRefused as refused:
            return _forbidden(refused.reason)
        if authenticate is not None:
            subject = await authenticate(request.headers.get(hdrs.AUTHORIZATION))
            if subject is None:
                return _forbidden("this URL needs the bearer token of the caller it was issued to")
            if subject != grant.audience:
                return _forbidden("this URL was issued to another caller")
        return await _serve_blob(request, blobs, grant)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/v1/artifacts/{version_id}", download)  # HEAD too (allow_head)
    app.router.add_get("/healthz", healthz)
    return app


async def _serve_blob(request: web.Request, blobs: ArtifactBlobs, grant: DownloadGrant) -> web.StreamResponse:
    try:
        size = await blobs.size(grant.sha256)
    except NotFound:
        return _missing(grant)
    etag = f'"{grant.sha256}"'
    headers = {hdrs.ETAG: etag, hdrs.ACCEPT_RANGES: "bytes", hdrs.CONTENT_TYPE: "application/octet-stream"}
    if_range = request.headers.get(hdrs.IF_RANGE)
    try:
        span = requested_span(
            request.headers.get(hdrs.RANGE), size, if_range_matches=if_range is None or if_range == etag
        )
    except RangeNotSatisfiable:
        headers[hdrs.CONTENT_RANGE] = f"bytes */{size}"
        return web.Response(status=416, headers=headers)
    if span.partial:
        headers[hdrs.CONTENT_RANGE] = span.content_range()
    response = web.StreamResponse(status=206 if span.partial else 200, headers=headers)
    response.content_length = span.length
    if request.method == hdrs.METH_HEAD or span.length == 0:
        await response.prepare(request)
        return response
    path = blobs.local_path(grant.sha256)
    try:
        if path is not None:
            sent = await _send_file(request, response, path, span)
        else:
            sent = await _send_chunks(
                request, response, blobs.chunks(grant.sha256, start=span.start, end=span.end)
            )
        return _missing(grant) if sent is None else sent
    except ConnectionError:
        log.debug("the client of %s went away mid-body", request.path)
        return response


async def _send_file(
    request: web.Request, response: web.StreamResponse, path: Path, span: ByteSpan
) -> web.StreamResponse | None:
    """Send the span with the kernel's sendfile, as web.FileResponse does (it would put its own mtime
    ETag and Range rules on the answer); None when the file has gone."""
    try:
        file = await asyncio.to_thread(path.open, "rb")
    except FileNotFoundError:
        return None
    try:
        await response.prepare(request)
        if request.transport is None:
            raise ConnectionResetError("connection lost before the body")
        try:
            await asyncio.get_running_loop().sendfile(request.transport, file, span.start, span.length)
        except NotImplementedError:
            await _copy_file(response, file, span)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(file.close)


async def _copy_file(response: web.StreamResponse, file: BinaryIO, span: ByteSpan) -> None:
    await asyncio.to_thread(file.seek, span.start)
    left = span.length
    while left > 0 and (chunk := await asyncio.to_thread(file.read, min(_SEND_CHUNK_BYTES, left))):
        await response.write(chunk)
        left -= len(chunk)


async def _send_chunks(
    request: web.Request, response: web.StreamResponse, chunks: AsyncIterator[bytes]
) -> web.StreamResponse | None:
    """Stream the chunks; None when the blob has gone (read before the status goes out, so still a 404)."""
    try:
        first = await anext(chunks, b"")
    except NotFound:
        return None
    await response.prepare(request)
    await response.write(first)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


def _forbidden(reason: str) -> web.Response:
    return web.Response(status=403, text=reason)


def _missing(grant: DownloadGrant) -> web.Response:
    return web.Response(status=404, text=f"the registry holds no blob {grant.sha256} for {grant.version_id}")


class _PathOnlyAccessLogger(AbstractAccessLogger):
    """Logs each request without its query string: a URL's signature stays out of the logs."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %d %d %.3fs',
            request.remote,
            request.method,
            request.path,
            response.status,
            response.body_length,
            time,
        )


@asynccontextmanager
async def serve_downloads(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve `app` on host:port (0: any free port) while the context is open; yields the bound port."""
    runner = web.AppRunner(app, access_log_class=_PathOnlyAccessLogger)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()
