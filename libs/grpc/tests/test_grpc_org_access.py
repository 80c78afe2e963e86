"""A refusal for another organization's resource names the caller's organization, never the other one."""

from __future__ import annotations

import pytest

from modelyard_events.domain_errors import PermissionDenied
from modelyard_grpc import Role, require_org_access
from modelyard_grpc.auth import Principal


def test_another_organizations_resource_is_refused_without_naming_that_organization() -> None:
    caller = Principal(subject="oa", org_id="acme", roles=frozenset({Role.ORG_ADMIN}))

    with pytest.raises(PermissionDenied) as refused:
        require_org_access(caller, "globex-secret-division")

    assert "globex" not in str(refused.value)
    assert refused.value.message == "oa may not access this: it is not in your organization (acme)"


def test_a_caller_of_its_own_organization_passes() -> None:
    require_org_access(Principal(subject="oa", org_id="acme", roles=frozenset({Role.ORG_ADMIN})), "acme")
