"""Topic names and their creation: `modelyard.<service>.events` and its `.dlq`."""

from __future__ import annotations

import contextlib
import os

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from modelyard_events.kafka_security import KafkaSecurity, kafka_admin

DEFAULT_PARTITIONS = 6
FETCH_WAIT_ENV = "MODELYARD_KAFKA_FETCH_WAIT_MS"
KAFKA_FETCH_WAIT_MS = 500  # Kafka's own default
TANSU_FETCH_WAIT_MS = 100  # an idle test platform: 81% of a core at 50 ms, 49% at 100 (bench/README.md)


def fetch_max_wait_ms() -> int:
    """How long a consumer's fetch may wait on the broker for data (MODELYARD_KAFKA_FETCH_WAIT_MS).

    Kafka answers a waiting fetch as soon as data arrives, so there this only sets how often an idle
    consumer asks: 500 ms. Tansu (the embedded broker) answers later the longer the wait (one
    consumer, an event every ~150 ms: delivery p50 3 ms at 10 ms, 8 ms at 50, 115 ms at 500), but
    asking 100 times a second cost each idle consumer 7% of a core, and a test platform's consumers
    most of a 2-core machine; at 50 ms, 1.9%. The embedded stack sets TANSU_FETCH_WAIT_MS (stack.infra).
    """
    raw = os.environ.get(FETCH_WAIT_ENV, str(KAFKA_FETCH_WAIT_MS))
    try:
        wait = int(raw)
    except ValueError:
        raise ValueError(f"{FETCH_WAIT_ENV} must be milliseconds (an integer), not {raw!r}") from None
    if not 1 <= wait <= 60_000:
        raise ValueError(f"{FETCH_WAIT_ENV} must be between 1 and 60000 ms, not {wait}")
    return wait


DEFAULT_NAMESPACE = "modelyard"


def events_topic(service: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The topic a service's relay publishes to: `<namespace>.<service>.events`.

    One deployment uses one namespace (MODELYARD_TOPIC_NAMESPACE in the services' settings), so
    several deployments, or test runs, can share a Kafka cluster without reading each other's logs.
    """
    return f"{namespace}.{service}.events"


def dead_letter_topic(topic: str) -> str:
    """Where poison messages read from `topic` go, with the error in headers."""
    return f"{topic}.dlq"


async def ensure_topics(
    bootstrap_servers: str,
    topics: list[str],
    partitions: int = DEFAULT_PARTITIONS,
    *,
    security: KafkaSecurity | None = None,
) -> None:
    """Create missing topics; existing ones are left as they are.

    Replication comes from MODELYARD_TOPIC_REPLICATION (default 1, for one-broker
    dev stacks); a real cluster sets 3, or declares the topics itself (deploy/k8s).
    `security` (plaintext when None) is how the admin client connects.
    """
    replication = int(os.environ.get("MODELYARD_TOPIC_REPLICATION", "1"))
    admin = kafka_admin(bootstrap_servers, security)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, partitions, replication) for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process was first
                await admin.create_topics(missing)
    finally:
        await admin.close()
