"""pytest fixtures for the real stack: one PostgreSQL and one broker for the whole session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from modelyard_devstack.stack import Infra, infra


@pytest.fixture(scope="session")
def stack() -> Iterator[Infra]:
    """The session's servers (embedded unless the environment names others)."""
    with infra() as servers:
        yield servers


@pytest.fixture
def unique_schema() -> str:
    """A fresh schema name, so tests share one database without seeing each other."""
    return f"t_{uuid.uuid4().hex[:12]}"
