"""`python -m modelyard_trainer serve|work`: the composition root; runs until SIGTERM/SIGINT.

- `work`: one trainer worker (several may run, each with its own MODELYARD_TRAINER_ID); it holds
  no database URL and no signing key, and appends its reports through trainer-svc.
- `serve`: trainer-svc's API process: the trainer store's only writer (workers' AppendReports),
  the relay of the trainer log to Kafka, and ReadEvents.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

from pydantic import ValidationError

from modelyard_events.db import create_engine
from modelyard_events.relay import Relay
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.topics import events_topic
from modelyard_grpc.heap import freeze_startup_heap
from modelyard_grpc.settings import settings_problems
from modelyard_trainer.config import TrainerSettings
from modelyard_trainer.grpc_api import serving_api
from modelyard_trainer.worker import run_worker
from modelyard_trainer.worker.stalls import EXIT_STALLED, TrainingThreadStalled

Mode = Callable[[TrainerSettings, asyncio.Event], Awaitable[None]]
LOG_FORMAT = "%(asctime)s trainer %(levelname)s %(message)s"


async def serve(settings: TrainerSettings, stop: asyncio.Event) -> None:
    """Serve AppendReports and ReadEvents on the trainer store and relay it to Kafka until `stop`."""
    engine = create_engine(settings.store_url)
    store = PostgresEventStore(engine, settings.trainer_store_schema, signer=settings.head_signer())
    relaying: asyncio.Task[None] | None = None
    try:
        await store.create_schema()
        await store.sign_tail()
        relay = Relay(
            store,
            settings.store_url,
            settings.kafka_bootstrap_servers,
            events_topic("trainer", settings.topic_namespace),
            security=settings.kafka_security,
        )
        relaying = asyncio.create_task(relay.run(stop), name="relay")
        async with serving_api(settings, store):
            freeze_startup_heap()
            await stop.wait()
    finally:
        stop.set()
        if relaying is not None:
            await relaying
        await store.close()
        await engine.dispose()


MODES: dict[str, Mode] = {"serve": serve, "work": run_worker}


async def run_until_signalled(mode: Mode, settings: TrainerSettings) -> None:
    """Run `mode` until SIGTERM or SIGINT sets its stop event."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await mode(settings, stop)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse the mode, read the settings, run; 0 after a clean stop, 2 on bad settings,
    3 (stalls.EXIT_STALLED) when a worker's training thread hung."""
    parser = argparse.ArgumentParser(prog="python -m modelyard_trainer", description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=sorted(MODES), help="work: a trainer worker; serve: the API process")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format=LOG_FORMAT)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    try:
        settings = TrainerSettings()  # required fields come from the environment
    except ValidationError as error:
        logging.getLogger(__name__).error("bad settings: %s", settings_problems(error))
        return 2
    if args.mode == "serve" and (missing := settings.serve_problems()):
        logging.getLogger(__name__).error("bad settings: %s", "; ".join(missing))
        return 2
    try:
        asyncio.run(run_until_signalled(MODES[args.mode], settings))
    except TrainingThreadStalled as stalled:
        logging.getLogger(__name__).error("%s; exiting with status %d", stalled, EXIT_STALLED)
        logging.shutdown()
        # Not a normal exit: the interpreter would join the hung thread at exit, for ever.
        os._exit(EXIT_STALLED)
    logging.getLogger(__name__).info("%s stopped cleanly", args.mode)
    return 0
