"""Fixtures of the artifact library's tests: URL signer and verifier on the registry's key."""

from __future__ import annotations

import pytest
from artifact_support import REGISTRY_KEY

from modelyard_artifacts.signed_urls import UrlSigner, UrlVerifier


@pytest.fixture
def url_signer() -> UrlSigner:
    """Mints URLs with the registry key."""
    return UrlSigner(REGISTRY_KEY)


@pytest.fixture
def url_verifier() -> UrlVerifier:
    """Pins the registry key only."""
    return UrlVerifier([REGISTRY_KEY.public_key])
