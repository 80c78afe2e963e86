"""`python -m modelyard_registry`: run registry-svc until SIGTERM/SIGINT (settings from the environment)."""

from __future__ import annotations

import asyncio
import logging
import signal

from modelyard_grpc.heap import freeze_startup_heap
from modelyard_grpc.settings import exit_on_bad_settings
from modelyard_registry.bootstrap import running_registry_service
from modelyard_registry.config import RegistrySettings


async def serve(settings: RegistrySettings) -> None:
    """Run every part of registry-svc until signalled."""
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with running_registry_service(settings, stop):
        freeze_startup_heap()
        await stop.wait()


def main() -> None:
    """Entry point."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s registry-svc %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # Required fields come from the environment; bad ones stop it with one line and exit 2.
    exit_on_bad_settings(lambda: asyncio.run(serve(RegistrySettings())), logging.getLogger(__name__))


if __name__ == "__main__":
    main()
