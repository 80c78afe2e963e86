"""Choosing and running the infrastructure: external, containers, or embedded."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from modelyard_devstack.broker import EmbeddedBroker
from modelyard_devstack.postgres import FAST_SETTINGS, EmbeddedPostgres
from modelyard_events.topics import FETCH_WAIT_ENV, TANSU_FETCH_WAIT_MS


@dataclass(frozen=True)
class Infra:
    """Where the servers are, and where each came from (embedded, external, containers)."""

    database_url: str
    kafka_bootstrap_servers: str
    kind: str


@contextmanager
def infra(durable: bool = False) -> Iterator[Infra]:
    """Servers for the duration of the block, stopped afterwards (unless external).

    DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS, each on its own, replace the
    embedded server of its kind; MODELYARD_TEST_INFRA=containers asks Docker.
    """
    database_url = os.environ.get("DATABASE_URL")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    mode = os.environ.get("MODELYARD_TEST_INFRA", "embedded")
    if mode not in ("embedded", "containers"):
        raise ValueError(f"MODELYARD_TEST_INFRA must be 'embedded' or 'containers', not {mode!r}")
    kind = f"PostgreSQL {'external' if database_url else mode}, broker {'external' if bootstrap else mode}"
    with ExitStack() as stack:
        if mode == "containers" and not (database_url and bootstrap):
            database_url, bootstrap = stack.enter_context(_containers(database_url, bootstrap))
        workdir = Path(tempfile.mkdtemp(prefix="modelyard-infra-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        if database_url is None:
            postgres = EmbeddedPostgres(workdir / "pg" / "data", {} if durable else FAST_SETTINGS)
            database_url = postgres.start()
            stack.callback(postgres.stop)
        if bootstrap is None:
            broker = EmbeddedBroker(workdir / "broker")
            bootstrap = broker.start()
            stack.callback(broker.stop)
            # Tansu answers a waiting fetch late, so its consumers wait less than Kafka's (topics.py).
            _default_env(stack, FETCH_WAIT_ENV, str(TANSU_FETCH_WAIT_MS))
        yield Infra(database_url, bootstrap, kind)


def _default_env(stack: ExitStack, name: str, value: str) -> None:
    """Set `name` for the block unless already set; processes started in the block inherit it."""
    if name in os.environ:
        return
    os.environ[name] = value
    stack.callback(os.environ.pop, name, None)


@contextmanager
def separate_database(servers: Infra, name: str) -> Iterator[Infra]:
    """`servers` with a database of its own on the same PostgreSQL server, dropped afterwards.

    Two platforms on one database would share every service's store and the dispatcher's lock: one
    job-svc would dispatch the other's jobs to trainers that never hear of them.
    """
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"a database name is lowercase letters, digits and '_', not {name!r}")
    with psycopg.connect(servers.database_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    own_url = urlunsplit(urlsplit(servers.database_url)._replace(path=f"/{name}"))
    try:
        yield replace(servers, database_url=own_url)
    finally:
        with psycopg.connect(servers.database_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def _containers(database_url: str | None, bootstrap: str | None) -> Iterator[tuple[str, str]]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with ExitStack() as stack:
        if database_url is None:
            pg = stack.enter_context(PostgresContainer("postgres:16-alpine", driver=None))
            database_url = pg.get_connection_url()
        if bootstrap is None:
            kafka = stack.enter_context(KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft())
            bootstrap = kafka.get_bootstrap_server()
        yield database_url, bootstrap
