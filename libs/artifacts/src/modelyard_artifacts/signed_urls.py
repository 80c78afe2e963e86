"""Download URLs signed for one audience: who may fetch which artifact bytes, until when (DESIGN §5).

The registry mints `{base}/v1/artifacts/{version_id}?sha256=…&aud=…&exp=…&kid=…&sig=…`; its download
endpoint serves the blob named by `sha256` only while the signature over (version, sha256, audience,
expiry) verifies under a pinned key and the expiry has not passed. The audience is the subject of the
one caller (an edge server) the URL was minted for; the endpoint can also require that caller's
bearer token, so a leaked URL is useless to anyone else. A URL lives at most 24 hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelyard_artifacts.integrity import is_sha256
from modelyard_artifacts.signature_text import signature_bytes, signature_text
from modelyard_events.canonical import canonical_json, canonical_timestamp
from modelyard_events.signing import Ed25519Key, SigningKeyError, key_id_of, public_key_from_text

MAX_URL_LIFETIME = timedelta(hours=24)
CLOCK_SKEW = timedelta(minutes=5)  # a verifier's clock may run behind the minter's by this much
_LIFETIME_TEXT = f"{MAX_URL_LIFETIME / timedelta(hours=1):g} hours"
_DOMAIN = b"modelyard.v1.download-url\n"
_PARAMETERS = ("sha256", "aud", "exp", "kid", "sig")


class UrlRefused(Exception):
    """A download URL that grants nothing; `reason` is short enough for a 403 body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DownloadGrant:
    """What a verified URL allows: `audience` may fetch blob `sha256` of `version_id` until `expires_at`."""

    version_id: str
    sha256: str
    audience: str
    expires_at: datetime


def _signed_text(version_id: str, sha256: str, audience: str, expires_unix: int) -> bytes:
    # A JSON array keeps the fields apart whatever characters an id or audience holds.
    return _DOMAIN + canonical_json([version_id, sha256, audience, expires_unix]).encode()


class UrlSigner:
    """Mints download URLs with the registry's private key."""

    def __init__(self, key: Ed25519Key) -> None:
        self._key = key

    def mint(
        self,
        version_id: str,
        sha256: str,
        audience: str,
        expires_at: datetime,
        base_url: str,
        *,
        now: datetime | None = None,
    ) -> str:
        """A URL that lets `audience` fetch blob `sha256` of `version_id` until `expires_at` (whole
        seconds, rounded down). ValueError for a malformed hash, an empty id or audience, or an expiry
        that is not in the next 24 hours."""
        lifetime = expires_at - (now or datetime.now(UTC))
        if not timedelta(0) < lifetime <= MAX_URL_LIFETIME:
            raise ValueError(
                f"a download URL must expire within {_LIFETIME_TEXT} from now; "
                f"{canonical_timestamp(expires_at)} is {lifetime} away"
            )
        if not is_sha256(sha256) or not version_id or not audience:
            raise ValueError("a download URL needs a version id, an audience and a lowercase hex SHA-256")
        expires_unix = int(expires_at.timestamp())
        signature = self._key.private_key.sign(_signed_text(version_id, sha256, audience, expires_unix))
        query = urlencode(
            {
                "sha256": sha256,
                "aud": audience,
                "exp": str(expires_unix),
                "kid": self._key.key_id,
                "sig": signature_text(signature),
            }
        )
        return f"{base_url.rstrip('/')}/v1/artifacts/{quote(version_id, safe='')}?{query}"


class UrlVerifier:
    """Checks download URLs against the registry public keys pinned by the endpoint."""

    def __init__(self, public_keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id_of(key): key for key in public_keys}
        if not self._keys:
            raise SigningKeyError("a URL verifier needs at least one pinned registry public key")

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> UrlVerifier:
        """A verifier from configuration: base64url raw public keys."""
        return cls(public_key_from_text(text, "a registry public key") for text in texts)

    def check(self, version_id: str, query: Mapping[str, str], now: datetime) -> DownloadGrant:
        """The grant a URL for `version_id` with these query parameters carries at `now`; UrlRefused
        when a parameter is missing or malformed, the key is not pinned, the signature does not cover
        exactly these values, or the URL has expired."""
        missing = [name for name in _PARAMETERS if not query.get(name)]
        if missing:
            raise UrlRefused(f"the URL lacks {', '.join(missing)}; ask the registry for a new one")
        sha256, audience, kid = query["sha256"], query["aud"], query["kid"]
        if not is_sha256(sha256):
            raise UrlRefused("sha256 is not 64 lowercase hex digits")
        if not (query["exp"].isascii() and query["exp"].isdigit() and len(query["exp"]) <= 12):
            raise UrlRefused("exp is not a Unix time in seconds")
        expires_unix = int(query["exp"])
        key = self._keys.get(kid)
        if key is None:
            raise UrlRefused(f"the URL is signed by key {kid!r}, which this registry does not pin")
        signed = _signed_text(version_id, sha256, audience, expires_unix)
        try:
            key.verify(signature_bytes(query["sig"]), signed)
        except (InvalidSignature, ValueError) as error:
            raise UrlRefused(
                "the signature does not match this URL (altered, or for another artifact)"
            ) from error
        expires_at = datetime.fromtimestamp(expires_unix, UTC)
        if now >= expires_at:
            raise UrlRefused(f"the URL expired at {canonical_timestamp(expires_at)}; ask for a new one")
        if expires_at - now > MAX_URL_LIFETIME + CLOCK_SKEW:
            raise UrlRefused(f"the URL lives longer than the {_LIFETIME_TEXT} a URL may")
        return DownloadGrant(version_id, sha256, audience, expires_at)
