"""`python -m modelyard_grpc.probe PORT [--server-name NAME] [--service S]`: a readiness and liveness
probe for a pod's own gRPC server, over TLS when MODELYARD_TLS_* say so.

Exits 0 when the server on 127.0.0.1:PORT reports SERVING, 1 otherwise. Kubernetes' built-in `grpc`
probe speaks plaintext only, so a TLS-only server needs this exec probe; `--server-name` is the name
in the server's certificate (the Service's name), checked instead of 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from grpc import aio

from modelyard_grpc.client import wait_until_serving
from modelyard_grpc.tls import TlsSettings


async def answers_serving(
    settings: TlsSettings,
    port: int,
    *,
    server_name: str | None = None,
    service: str = "",
    timeout_s: float = 2.0,
) -> bool:
    """True when the server on 127.0.0.1:`port` reports `service` SERVING within `timeout_s`."""
    if server_name:
        settings = settings.model_copy(update={"tls_server_name": server_name})
    async with settings.grpc_channel(f"127.0.0.1:{port}") as ch:
        try:
            await wait_until_serving(ch, service, timeout_s=timeout_s)
        except (TimeoutError, aio.AioRpcError):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Probe once; the exit status says whether the server serves."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("port", type=int)
    parser.add_argument("--server-name", default=None, help="the name the server's certificate carries")
    parser.add_argument("--service", default="", help="a service's full name (default: the whole server)")
    parser.add_argument("--timeout-s", type=float, default=2.0)
    args = parser.parse_args(argv)
    serving = asyncio.run(
        answers_serving(
            TlsSettings(),
            args.port,
            server_name=args.server_name,
            service=args.service,
            timeout_s=args.timeout_s,
        )
    )
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
