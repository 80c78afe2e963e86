"""GetDownloadUrl's rules and the HTTP side: expiring URLs signed for one audience.

Who may have a URL for what: an edge only a released version, for itself; a trainer any version
(it evaluates drafts and fine-tunes from approved ones), for itself; an org_admin its own
organization's versions; super_admin and auditor any. The HTTP endpoint then also demands the
bearer token of the URL's audience, so a leaked URL is useless to anyone else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelyard_artifacts.signed_urls import UrlSigner
from modelyard_events.domain_errors import InvalidArgument, PermissionDenied
from modelyard_grpc import Role, require_org_access
from modelyard_grpc.auth import Principal, TokenError, TokenVerifier, bearer_token
from modelyard_registry.domain.version_state import VersionState

MAX_TTL_S = 86400


@dataclass(frozen=True)
class MintedUrl:
    """A signed artifact URL and the config blob's, both for one audience, until `expires_at`."""

    url: str
    config_url: str
    expires_at: datetime


def audience_for(principal: Principal, version: VersionState, requested: str) -> str:
    """Whom the URL is for; PermissionDenied when the caller may not have it.

    Only a super_admin names another audience (e.g. an edge server it deploys to); everyone else
    gets URLs for itself: an auditor or a trainer for any version, an org_admin for its own
    organization's, an edge for its own organization's released versions.
    """
    if Role.SUPER_ADMIN in principal.roles:
        return requested or principal.subject
    if requested and requested != principal.subject:
        raise PermissionDenied(
            f"{principal.subject} may only get download URLs for itself, not for {requested[:100]}; "
            "a super_admin issues URLs for others"
        )
    if principal.roles & {Role.AUDITOR, Role.TRAINER}:
        return principal.subject
    require_org_access(principal, version.registered.org_id)
    if Role.ORG_ADMIN not in principal.roles and version.status != "released":
        raise PermissionDenied(
            f"{version.label} is {version.status}; edge servers download released versions only"
        )
    return principal.subject


def mint_urls(
    signer: UrlSigner, base_url: str, version: VersionState, audience: str, ttl_s: int, now: datetime
) -> MintedUrl:
    """The artifact's and the config's URL for `audience`, valid `ttl_s` seconds."""
    if not 0 < ttl_s <= MAX_TTL_S:
        raise InvalidArgument("ttl_s", f"a download URL lives 1 to {MAX_TTL_S} seconds, not {ttl_s}")
    expires = now + timedelta(seconds=ttl_s)
    registered = version.registered
    url = signer.mint(version.version_id, registered.artifact_sha256, audience, expires, base_url, now=now)
    config_url = signer.mint(
        version.version_id, registered.config.config_sha256, audience, expires, base_url, now=now
    )
    return MintedUrl(url, config_url, expires.replace(microsecond=0))


def bearer_subject(verifier: TokenVerifier) -> Callable[[str | None], Awaitable[str | None]]:
    """The HTTP endpoint's check: the Authorization header's verified subject, or None."""

    async def authenticate(authorization: str | None) -> str | None:
        try:
            return verifier.verify(bearer_token(authorization)).subject
        except TokenError:
            return None

    return authenticate
