"""`python -m modelyard_events.run_relay --schema S --topic T`: a relay as its own process.

Reads DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and MODELYARD_KAFKA_* (SASL/SSL) from the environment and stops
cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from modelyard_events.db import create_engine
from modelyard_events.kafka_security import KafkaSecurity
from modelyard_events.relay import Relay
from modelyard_events.store.postgres import PostgresEventStore


async def _main(schema: str, topic: str) -> None:
    database_url = os.environ["DATABASE_URL"]
    engine = create_engine(database_url)
    store = PostgresEventStore(engine, schema)
    await store.create_schema()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    relay = Relay(store, database_url, bootstrap, topic, security=KafkaSecurity())
    try:
        await relay.run(stop)
    finally:
        await engine.dispose()


def main() -> None:
    """Parse arguments and run the relay until signalled."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schema", required=True, help="the store's PostgreSQL schema")
    parser.add_argument("--topic", required=True, help="the Kafka topic to publish to")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s relay %(levelname)s %(message)s")
    asyncio.run(_main(args.schema, args.topic))


if __name__ == "__main__":
    main()
