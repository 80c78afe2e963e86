"""`python -m modelyard_dataset`: run dataset-svc until SIGTERM/SIGINT (settings from the environment)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from pydantic import ValidationError

from modelyard_dataset.bootstrap import running_dataset_service
from modelyard_dataset.config import DatasetSettings
from modelyard_events.signing import SigningKeyError
from modelyard_grpc.settings import settings_problems


async def serve(settings: DatasetSettings) -> None:
    """Run every part of dataset-svc until signalled."""
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with running_dataset_service(settings, stop):
        await stop.wait()


def main() -> None:
    """Entry point."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s dataset-svc %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(DatasetSettings()))  # required fields come from the environment
    except ValidationError as error:
        logging.getLogger(__name__).error("bad settings: %s", settings_problems(error))
        sys.exit(2)
    except SigningKeyError as error:  # a key missing or not pinned, found while starting
        logging.getLogger(__name__).error("bad settings: %s", error)
        sys.exit(2)


if __name__ == "__main__":
    main()
