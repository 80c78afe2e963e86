"""A PostgreSQL of its own for deploy-svc's view tests (no broker: the views are applied directly)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_devstack.postgres import FAST_SETTINGS, EmbeddedPostgres
from modelyard_events.db import create_engine


@pytest.fixture(scope="session")
def deploy_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a throwaway PostgreSQL server."""
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("deploy-pg")) / "data", dict(FAST_SETTINGS))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def views_engine(deploy_postgres: str) -> AsyncIterator[AsyncEngine]:
    """An engine on that server."""
    engine = create_engine(deploy_postgres)
    try:
        yield engine
    finally:
        await engine.dispose()
