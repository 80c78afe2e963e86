"""`python -m modelyard_job`: run job-svc until SIGTERM/SIGINT (settings from the environment)."""

from __future__ import annotations

import asyncio
import logging
import signal

from modelyard_grpc.heap import freeze_startup_heap
from modelyard_grpc.settings import exit_on_bad_settings
from modelyard_job.bootstrap import running_job_service
from modelyard_job.config import JobSettings


async def serve(settings: JobSettings) -> None:
    """Run every part of job-svc until signalled."""
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with running_job_service(settings, stop):
        freeze_startup_heap()
        await stop.wait()


def main() -> None:
    """Entry point."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s job-svc %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # Required fields come from the environment; bad ones stop it with one line and exit 2.
    exit_on_bad_settings(lambda: asyncio.run(serve(JobSettings())), logging.getLogger(__name__))


if __name__ == "__main__":
    main()
