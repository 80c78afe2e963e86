"""Fixtures of the cross-process tests: an engine and a fresh store per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_devstack import Infra
from modelyard_events.db import create_engine
from modelyard_events.store.postgres import PostgresEventStore

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(stack: Infra) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(stack.database_url, pool_size=10)
    yield engine
    await engine.dispose()


@pytest.fixture
async def store(engine: AsyncEngine, unique_schema: str) -> AsyncIterator[PostgresEventStore]:
    store = PostgresEventStore(engine, unique_schema)
    await store.create_schema()
    yield store
    await store.close()
