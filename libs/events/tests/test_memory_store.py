import pytest

from modelyard_events.store import InMemoryEventStore
from modelyard_events.testing.signing import TEST_SIGNER
from modelyard_events.testing.store_contract import EventStoreContract


class TestInMemoryEventStore(EventStoreContract):
    @pytest.fixture
    def store(self) -> InMemoryEventStore:
        return InMemoryEventStore(signer=TEST_SIGNER)
