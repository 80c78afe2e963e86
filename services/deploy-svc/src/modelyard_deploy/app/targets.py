"""Which servers a rollout request names, and whether the version may go to each of them.

Every problem is collected before refusing, so an operator fixes a request in one round trip: all the
unknown servers in one NotFound, all the refused ones (each with its reason) in one IllegalTransition.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelyard_deploy.app.ports import DeployReads, KnownVersion, ServerFacts
from modelyard_deploy.app.rollout_request import RolloutRequest
from modelyard_deploy.domain.compatibility import server_refusal, version_refusal
from modelyard_deploy.domain.edge_server import check_server_id
from modelyard_events.domain_errors import IllegalTransition, InvalidArgument, NotFound

_SHOWN = 20  # servers named in one refusal; the count covers them all


async def deployable_version(reads: DeployReads, version_id: str, org_id: str) -> KnownVersion:
    """The released version; NotFound when unknown (or another organization's), IllegalTransition
    naming its status otherwise."""
    version = await reads.version(version_id) if version_id else None
    if version is None or (org_id and version.org_id != org_id):
        raise NotFound(
            f"version {version_id!r} is not known to deploy-svc: the registry has not announced it "
            "(or it belongs to another organization)"
        )
    refusal = version_refusal(version)
    if refusal:
        raise IllegalTransition(refusal)
    return version


async def target_servers(
    reads: DeployReads, request: RolloutRequest, version: KnownVersion, org_id: str
) -> tuple[list[ServerFacts], str | None]:
    """(servers in wave order, the environment when the request named all of one)."""
    if request.all_servers:
        if request.server_ids:
            raise InvalidArgument("server_ids", "name servers or ask for all_servers, not both")
        environment = _environment(request, version)
        servers = await reads.servers_in_environment(org_id, environment)
        if not servers:
            raise NotFound(f"organization {org_id} has no registered edge servers in {environment}")
        return servers, environment
    return await _listed(reads, request.server_ids, org_id), request.environment or None


def check_compatible(version: KnownVersion, servers: list[ServerFacts]) -> None:
    """IllegalTransition listing every server that cannot take `version`, and why."""
    refused = [(s.server_id, why) for s in servers if (why := server_refusal(version, s))]
    if not refused:
        return
    lines = "; ".join(f"{server}: {why}" for server, why in refused[:_SHOWN])
    more = f"; and {len(refused) - _SHOWN} more" if len(refused) > _SHOWN else ""
    raise IllegalTransition(
        f"version {version.version_id} ({version.ai_module} {version.semantic_version}) cannot go to "
        f"{len(refused)} of {len(servers)} servers: {lines}{more}"
    )


def _environment(request: RolloutRequest, version: KnownVersion) -> str:
    if request.environment:
        return request.environment
    if len(version.environments) == 1:
        return version.environments[0]
    raise InvalidArgument(
        "environment",
        f"the version is released to {', '.join(version.environments) or 'no environment'}; name one",
    )


async def _listed(reads: DeployReads, server_ids: Sequence[str], org_id: str) -> list[ServerFacts]:
    ids = list(server_ids)
    if not ids:
        raise InvalidArgument("server_ids", "name at least one server, or ask for all_servers")
    bad = [s for s in ids if check_server_id(s)]
    if bad:
        raise InvalidArgument(
            "server_ids", f"not a server id: {', '.join(repr(s[:80]) for s in bad[:_SHOWN])}"
        )
    found: list[ServerFacts] = []
    unknown: list[str] = []
    for server_id in dict.fromkeys(ids):
        server = await reads.server(org_id, server_id)
        if server is None:
            unknown.append(server_id)
        else:
            found.append(server)
    if unknown:
        more = f" and {len(unknown) - _SHOWN} more" if len(unknown) > _SHOWN else ""
        raise NotFound(
            f"no edge servers {', '.join(unknown[:_SHOWN])}{more} registered in organization {org_id}"
        )
    return found
