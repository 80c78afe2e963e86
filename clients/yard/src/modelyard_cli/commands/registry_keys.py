"""The registry public keys yard trusts to have signed artifact manifests: `--public-key` (repeatable),
else MODELYARD_REGISTRY_PUBLIC_KEYS, a JSON list (as edge servers pin them). The registry's operator
publishes its public key; never take one from the server you are checking."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from modelyard_artifacts.manifest import ManifestVerifier
from modelyard_cli.output import fail
from modelyard_events.signing import SigningKeyError

PUBLIC_KEYS_ENV = "MODELYARD_REGISTRY_PUBLIC_KEYS"

PublicKeys = Annotated[
    list[str] | None,
    typer.Option(
        "--public-key",
        help=f"A pinned registry public key (base64url); repeat for several. Default: {PUBLIC_KEYS_ENV} "
        "(a JSON list).",
        show_default=False,
    ),
]


def pinned_verifier(keys: list[str] | None) -> ManifestVerifier | None:
    """A verifier of the keys given, else of those in MODELYARD_REGISTRY_PUBLIC_KEYS; None when there are
    none. The command ends (exit 2) when a key or the variable is malformed."""
    texts = keys or _keys_in_environment()
    if not texts:
        return None
    try:
        return ManifestVerifier.from_texts(texts)
    except SigningKeyError as error:
        fail(f"error: {error}")


def _keys_in_environment() -> list[str]:
    text = os.environ.get(PUBLIC_KEYS_ENV, "").strip()
    if not text:
        return []
    try:
        keys = json.loads(text)
    except json.JSONDecodeError:
        keys = None
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        fail(f"error: {PUBLIC_KEYS_ENV} must be a JSON list of base64url public keys: '[\"KEY\", …]'")
    return keys
