"""`python -m modelyard_deploy`: run deploy-svc until SIGTERM/SIGINT (settings from the environment)."""

from __future__ import annotations

import asyncio
import logging
import signal

from modelyard_deploy.bootstrap import running_deploy_service
from modelyard_deploy.config import DeploySettings
from modelyard_grpc.heap import freeze_startup_heap
from modelyard_grpc.settings import exit_on_bad_settings


async def serve(settings: DeploySettings) -> None:
    """Run every part of deploy-svc until signalled."""
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with running_deploy_service(settings, stop):
        freeze_startup_heap()
        await stop.wait()


def main() -> None:
    """Entry point."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s deploy-svc %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # Required fields come from the environment; bad ones stop it with one line and exit 2.
    exit_on_bad_settings(lambda: asyncio.run(serve(DeploySettings())), logging.getLogger(__name__))


if __name__ == "__main__":
    main()
