"""Whether a version may be deployed at all, and whether one server can run it; each refusal says what
is needed, so an operator can act on it without looking anything up."""

from __future__ import annotations

import re
from typing import Protocol

# MAJOR.MINOR.PATCH with an optional leading "v" and pre-release/build tail (ignored when comparing:
# an agent "1.4.0-rc1" meets a minimum of "1.4.0"; agents are our own builds, not npm packages).
_EDGE_VERSION = re.compile(r"v?(\d{1,9})(?:\.(\d{1,9}))?(?:\.(\d{1,9}))?(?:[-+].*)?")


class KnownVersion(Protocol):
    """What the rules read of a registry version (app.ports.KnownVersion has it)."""

    @property
    def version_id(self) -> str: ...
    @property
    def ai_module(self) -> str: ...
    @property
    def semantic_version(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def environments(self) -> tuple[str, ...]: ...
    @property
    def released_to(self) -> tuple[str, ...]: ...
    @property
    def min_edge_version(self) -> str: ...
    @property
    def supported_platforms(self) -> tuple[str, ...]: ...


class ServerFacts(Protocol):
    """What the rules read of an edge server (app.ports.ServerFacts has it)."""

    @property
    def environment(self) -> str: ...
    @property
    def platform(self) -> str: ...
    @property
    def edge_version(self) -> str: ...


_NOT_RELEASED = {
    "draft": "is a draft; it must be evaluated, approved and released first",
    "testing": "is still being tested; it must be approved and released first",
    "approved": "is approved but not released; release it to an environment first",
    "deprecated": "is deprecated; deploy a released version (or release this one again)",
}


def parse_version(text: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of an edge or minimum version; None when it is not one."""
    match = _EDGE_VERSION.fullmatch(text.strip())
    if match is None:
        return None
    return int(match[1]), int(match[2] or 0), int(match[3] or 0)


def version_refusal(version: KnownVersion) -> str | None:
    """Why `version` may not be deployed (anything but released), or None."""
    if version.status == "released":
        return None
    why = _NOT_RELEASED.get(version.status, f"is {version.status}; only released versions deploy")
    return f"version {version.version_id} ({version.ai_module} {version.semantic_version}) {why}"


def server_refusal(version: KnownVersion, server: ServerFacts) -> str | None:
    """Why `server` cannot take `version` (every reason, joined), or None."""
    reasons = [
        reason
        for reason in (
            _edge_version(version, server),
            _platform(version, server),
            _environment(version, server),
        )
        if reason
    ]
    return "; ".join(reasons) or None


def _edge_version(version: KnownVersion, server: ServerFacts) -> str | None:
    if not version.min_edge_version:
        return None
    minimum, actual = parse_version(version.min_edge_version), parse_version(server.edge_version)
    if minimum is None:
        return f"the version's minimum edge version {version.min_edge_version!r} is not a version number"
    if actual is None:
        return f"edge version {server.edge_version!r} is not a version number (upgrade the agent)"
    if actual < minimum:
        return (
            f"edge version {server.edge_version} is below the version's minimum {version.min_edge_version} "
            "(upgrade the agent)"
        )
    return None


def _platform(version: KnownVersion, server: ServerFacts) -> str | None:
    if not version.supported_platforms or server.platform in version.supported_platforms:
        return None
    return (
        f"platform {server.platform} is not supported by the version "
        f"(supported: {', '.join(version.supported_platforms)})"
    )


def _environment(version: KnownVersion, server: ServerFacts) -> str | None:
    """A version deploys to the environments it was released to, the current release or an earlier
    one (going back to the previous version is how the seed rolls back)."""
    if server.environment in version.released_to or server.environment in version.environments:
        return None
    where = ", ".join(version.released_to) or "no environment"
    return (
        f"environment {server.environment}: the version is released to {where}; "
        f"release it to {server.environment} first"
    )
