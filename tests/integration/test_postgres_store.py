from collections.abc import AsyncIterator

import pytest

from modelyard_devstack import Infra
from modelyard_events.db import create_engine
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.signing import TEST_SIGNER
from modelyard_events.testing.store_contract import EventStoreContract

pytestmark = pytest.mark.integration


class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture
    async def store(self, stack: Infra, unique_schema: str) -> AsyncIterator[PostgresEventStore]:
        engine = create_engine(stack.database_url)
        store = PostgresEventStore(engine, unique_schema, signer=TEST_SIGNER)
        await store.create_schema()
        yield store
        await store.close()
        await engine.dispose()
