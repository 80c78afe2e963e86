"""Who may have a download URL for which version, and for whom (without I/O)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from registry_builders import ORG, registered

from modelyard_events.domain_errors import PermissionDenied
from modelyard_grpc.auth import Principal, Role
from modelyard_registry.domain.version_state import VersionState
from modelyard_registry.downloads import audience_for

DRAFT = registered("j1").get("v-j1")
RELEASED = replace(DRAFT, status="released")


def who(role: Role, org: str | None = ORG, subject: str = "caller") -> Principal:
    return Principal(subject, org, frozenset({role}))


@pytest.mark.parametrize(
    ("principal", "version", "requested", "allowed"),
    [
        (who(Role.SUPER_ADMIN, None), DRAFT, "edge-7", "edge-7"),
        (who(Role.AUDITOR, None), DRAFT, "", "caller"),
        (who(Role.TRAINER, None), DRAFT, "", "caller"),
        (who(Role.ORG_ADMIN), DRAFT, "", "caller"),
        (who(Role.EDGE), RELEASED, "", "caller"),
    ],
    ids=["super_admin-for-an-edge", "auditor-self", "trainer-self", "org_admin-own-org", "edge-released"],
)
def test_allowed(principal: Principal, version: VersionState, requested: str, allowed: str) -> None:
    assert audience_for(principal, version, requested) == allowed


@pytest.mark.parametrize(
    ("principal", "version", "requested", "says"),
    [
        (who(Role.EDGE), DRAFT, "", "released versions only"),
        (who(Role.EDGE, "globex"), RELEASED, "", "not in your organization"),
        (who(Role.ORG_ADMIN, "globex"), DRAFT, "", "not in your organization"),
        (who(Role.ORG_ADMIN), DRAFT, "edge-1", "only get download URLs for itself"),
        (who(Role.AUDITOR, None), DRAFT, "edge-1", "only get download URLs for itself"),
        (who(Role.TRAINER, None), DRAFT, "t-2", "only get download URLs for itself"),
        (who(Role.EDGE), RELEASED, "edge-2", "only get download URLs for itself"),
    ],
    ids=[
        "edge-draft",
        "edge-other-org",
        "org_admin-other-org",
        "org_admin-for-an-edge",
        "auditor-for-an-edge",
        "trainer-for-another",
        "edge-for-another",
    ],
)
def test_refused(principal: Principal, version: VersionState, requested: str, says: str) -> None:
    with pytest.raises(PermissionDenied, match=says):
        audience_for(principal, version, requested)
