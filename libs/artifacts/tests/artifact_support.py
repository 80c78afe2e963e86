"""Constants the artifact library's tests share: the registry's key, another key, a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelyard_events.signing import Ed25519Key

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(hours=1)
REGISTRY_KEY = Ed25519Key.generate()
OTHER_KEY = Ed25519Key.generate()
