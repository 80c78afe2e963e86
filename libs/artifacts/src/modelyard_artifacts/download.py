"""Resumable, verified artifact downloads: what an edge (or `yard`) runs against a signed URL.

The bytes go to `<dest>.part`; a cut connection or a 5xx is retried with exponential backoff and
resumed with `Range: bytes=<have>-` (from 0 when the server answers 200). Only a file whose size and
SHA-256 match what the caller expects (from the signed manifest) is fsynced and renamed to `dest`, so
`dest` never holds a partial or foreign artifact. A refusal (403, 404, other 4xx) is not retried.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from types import MappingProxyType

import aiohttp
from aiohttp import hdrs
from yarl import URL

from modelyard_artifacts.integrity import ArtifactMismatch, check_file
from modelyard_artifacts.running_digest import RunningDigest
from modelyard_artifacts.writeback import start_writeback

Progress = Callable[[int, int | None], None]  # (bytes on disk, total bytes when known)

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
_READ_BYTES = 1 << 20
_WRITEBACK_BYTES = 8 << 20  # how much lands before the kernel is asked to start writing it back
_MAX_BACKOFF_S = 30.0
_RETRIED_STATUSES = frozenset({408, 425, 429})
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(?:\d+|\*)")


class DownloadError(Exception):
    """A download that did not produce the artifact."""


class DownloadRefused(DownloadError):
    """The server refused the URL (403: expired, altered, another caller's; 404: no such artifact)."""

    def __init__(self, where: str, status: int, reason: str) -> None:
        super().__init__(f"GET {where} was refused with HTTP {status}: {reason or '(no reason given)'}")
        self.status = status
        self.reason = reason


class DownloadFailed(DownloadError):
    """Every attempt failed (network errors, 5xx); `last_error` is the final one's cause."""

    def __init__(self, where: str, bytes_received: int, attempts: int, last_error: BaseException) -> None:
        super().__init__(
            f"GET {where} failed after {attempts} attempts with {bytes_received:,} bytes received; "
            f"last error: {type(last_error).__name__}: {last_error}"
        )
        self.bytes_received = bytes_received
        self.attempts = attempts
        self.last_error = last_error


class _TryAgain(Exception):
    """An answer worth another attempt (a 5xx, 408/425/429, a resume the server did not honour)."""


async def download_artifact(
    url: str,
    dest: Path,
    *,
    expected_sha256: str,
    expected_size: int | None,
    headers: Mapping[str, str] = _NO_HEADERS,
    progress: Progress | None = None,
    attempts: int = 8,
    backoff_s: float = 0.5,
    stall_timeout_s: float = 30.0,
    session: aiohttp.ClientSession | None = None,
    ca_file: Path | None = None,
    rate_limit_bytes_per_s: float | None = None,
) -> Path:
    """Download `url` to `dest` and return `dest`, or raise; `dest` then holds exactly those bytes.

    `attempts` counts tries in a row that received nothing (a try that moved the download forward
    resets the count and the backoff, so a long download over a flaky link is not abandoned); waits
    double from `backoff_s` (at most 30 s). A connection silent for `stall_timeout_s` is a failed try.
    Raises DownloadRefused (not retried), DownloadFailed (naming the URL without its query, the bytes
    received, the tries, the last error), or ArtifactMismatch (the `.part` is deleted).
    Over https the server is checked against the system's CAs, plus `ca_file` when given (a
    cluster's own CA, MODELYARD_TLS_CA_FILE); a given `session` brings its own TLS settings.
    `rate_limit_bytes_per_s` caps the average rate of each try (a slow link, or an edge that must
    leave bandwidth to its traffic): reads are smaller and paused until the bytes are due.
    """
    if rate_limit_bytes_per_s is not None and rate_limit_bytes_per_s <= 0:
        raise ValueError(f"rate_limit_bytes_per_s must be positive, not {rate_limit_bytes_per_s}")
    where = str(URL(url).with_query(None))
    part = dest.with_suffix(dest.suffix + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=stall_timeout_s, sock_read=stall_timeout_s)
    async with _client(session, ca_file) as http:
        transfer = _Transfer(
            http, url, where, part, headers, expected_size, progress, timeout, rate_limit_bytes_per_s
        )
        await _retrying(transfer, where, attempts, backoff_s)
    sha256_of_part = await transfer.sha256_of_part()
    await asyncio.to_thread(_install, part, dest, expected_sha256, expected_size, where, sha256_of_part)
    return dest


async def _retrying(transfer: _Transfer, where: str, attempts: int, backoff_s: float) -> None:
    tries, failures_in_a_row = 0, 0
    while True:
        tries += 1
        before = transfer.received
        try:
            await transfer.fetch()
            return
        except (aiohttp.ClientError, TimeoutError, _TryAgain) as error:
            failures_in_a_row = 1 if transfer.received > before else failures_in_a_row + 1
            if failures_in_a_row >= attempts:
                raise DownloadFailed(where, transfer.received, tries, error) from error
            await asyncio.sleep(min(backoff_s * 2 ** (failures_in_a_row - 1), _MAX_BACKOFF_S))


class _Transfer:
    """One download's state across tries: where it writes and how many bytes arrived in all."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        where: str,
        part: Path,
        headers: Mapping[str, str],
        expected_size: int | None,
        progress: Progress | None,
        timeout: aiohttp.ClientTimeout,
        rate_limit_bytes_per_s: float | None = None,
    ) -> None:
        self.http, self.url, self.where, self.part, self.headers = http, url, where, part, headers
        self.expected_size, self.progress, self.timeout = expected_size, progress, timeout
        self.rate_limit_bytes_per_s = rate_limit_bytes_per_s
        self.received = 0
        self.digest: RunningDigest | None = None  # of the `.part`'s bytes, when this run wrote them

    async def sha256_of_part(self) -> str | None:
        """The SHA-256 of the whole `.part` when this run hashed every byte of it (None: read it)."""
        if self.digest is None or not self.part.exists() or self.digest.fed != self.part.stat().st_size:
            return None
        return await self.digest.hexdigest()

    async def fetch(self) -> None:
        """One try: ask for the bytes the `.part` lacks and append them; returns at the body's end."""
        have = self.part.stat().st_size if self.part.exists() else 0
        if have and self.expected_size is not None and have >= self.expected_size:
            if have == self.expected_size:
                return  # complete from an earlier run; checked before it is installed
            self.part.unlink()
            have = 0
        request_headers = dict(self.headers)
        if have:
            request_headers[hdrs.RANGE] = f"bytes={have}-"
        async with self.http.get(self.url, headers=request_headers, timeout=self.timeout) as response:
            start = await self._start_of(response, have)
            total = None if response.content_length is None else start + response.content_length
            await self._append(response, start, total if self.expected_size is None else self.expected_size)

    async def _start_of(self, response: aiohttp.ClientResponse, have: int) -> int:
        """Where the body goes in the `.part`: `have` for a 206 that resumes there, 0 for a 200."""
        status = response.status
        if status == 200:
            return 0
        if status in (206, 416):
            match = _CONTENT_RANGE.fullmatch(response.headers.get(hdrs.CONTENT_RANGE, ""))
            if status == 206 and match is not None and int(match.group(1)) == have:
                return have
            self.part.unlink(missing_ok=True)
            raise _TryAgain(f"HTTP {status}: the server did not resume at byte {have:,}; starting over")
        if status >= 500 or status in _RETRIED_STATUSES:
            raise _TryAgain(f"HTTP {status}: {await _reason(response)}")
        raise DownloadRefused(self.where, status, await _reason(response))

    async def _append(self, response: aiohttp.ClientResponse, start: int, total: int | None) -> None:
        if self.digest is None or self.digest.fed != start:
            self.digest = await RunningDigest.of_prefix(self.part, start)
        digest = self.digest
        with self.part.open("r+b" if start else "wb") as file:
            file.seek(start)
            file.truncate()
            on_disk = written_back = start
            pace = _Pace(self.rate_limit_bytes_per_s)
            async for chunk in response.content.iter_chunked(pace.read_bytes):
                file.write(chunk)
                on_disk += len(chunk)
                self.received += len(chunk)
                if self.expected_size is not None and on_disk > self.expected_size:
                    self.part.unlink(missing_ok=True)
                    raise ArtifactMismatch(self.where, f"{self.expected_size:,} bytes", "more than that")
                await digest.feed(chunk)
                if on_disk - written_back >= _WRITEBACK_BYTES:
                    file.flush()
                    start_writeback(file.fileno(), written_back, on_disk - written_back)
                    written_back = on_disk
                if self.progress is not None:
                    self.progress(on_disk, total)
                await pace.after(len(chunk))


class _Pace:
    """Holds one try's reads to a rate: after each chunk, sleeps until its bytes are due."""

    def __init__(self, bytes_per_s: float | None) -> None:
        self.bytes_per_s = bytes_per_s
        # about four reads a second, so progress stays smooth and the pauses short
        self.read_bytes = (
            _READ_BYTES if bytes_per_s is None else max(4096, min(_READ_BYTES, int(bytes_per_s / 4)))
        )
        self._started = asyncio.get_running_loop().time()
        self._bytes = 0

    async def after(self, chunk_bytes: int) -> None:
        if self.bytes_per_s is None:
            return
        self._bytes += chunk_bytes
        due = self._started + self._bytes / self.bytes_per_s
        wait = due - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)


async def _reason(response: aiohttp.ClientResponse) -> str:
    return (await response.text(errors="replace"))[:500].strip()


@asynccontextmanager
async def _client(
    session: aiohttp.ClientSession | None, ca_file: Path | None
) -> AsyncIterator[aiohttp.ClientSession]:
    if session is not None:
        yield session
        return
    connector = aiohttp.TCPConnector(ssl=https_context(ca_file) or True)
    async with aiohttp.ClientSession(connector=connector) as own:
        yield own


def https_context(ca_file: Path | None) -> ssl.SSLContext | None:
    """The TLS context of artifact downloads: the system's CAs plus `ca_file`; None without one."""
    if ca_file is None:
        return None
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_file)
    return context


def _install(
    part: Path,
    dest: Path,
    expected_sha256: str,
    expected_size: int | None,
    where: str,
    sha256_of_part: str | None,
) -> None:
    """Check the `.part`, make it durable and rename it to `dest` (blocking: runs in a thread)."""
    try:
        check_file(part, expected_sha256, expected_size, what=where, sha256_of_file=sha256_of_part)
    except ArtifactMismatch:
        part.unlink(missing_ok=True)
        raise
    with part.open("rb") as file:
        os.fsync(file.fileno())
    part.replace(dest)
    folder = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
