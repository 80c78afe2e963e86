"""Downloads over https from a server whose certificate a private CA signed (a cluster's own CA)."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import pytest
from aiohttp import web

from modelyard_artifacts.download import DownloadFailed, download_artifact
from modelyard_events.testing.certificates import make_certificates

BODY = bytes(range(256)) * 64


async def test_a_private_ca_is_trusted_only_when_given(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs", ("127.0.0.1",))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(certs.cert_file, certs.key_file)

    async def artifact(_: web.Request) -> web.Response:
        return web.Response(body=BODY)

    app = web.Application()
    app.router.add_get("/a", artifact)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls)
    await site.start()
    port = runner.addresses[0][1]
    url, sha = f"https://127.0.0.1:{port}/a", hashlib.sha256(BODY).hexdigest()
    try:
        with pytest.raises(DownloadFailed):
            await download_artifact(
                url, tmp_path / "untrusted.bin", expected_sha256=sha, expected_size=len(BODY), attempts=1
            )
        done = await download_artifact(
            url, tmp_path / "trusted.bin", expected_sha256=sha, expected_size=len(BODY), ca_file=certs.ca_file
        )
    finally:
        await runner.cleanup()
    assert done.read_bytes() == BODY
