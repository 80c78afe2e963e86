"""`yard models list | show | evaluate | approve | reject | release | deprecate | rollback | renumber`:
model versions in registry-svc and their lifecycle (draft → testing → approved → released → deprecated).

A refused command prints the server's message as it was written (`error: FAILED_PRECONDITION: …`),
and for approval and release what the refusal usually means.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import grpc
import typer
from grpc import aio

from modelyard.v1 import registry_pb2
from modelyard_cli.commands.options import JsonFlag
from modelyard_cli.connection import RegistrySvc
from modelyard_cli.invocation import Advice, call_registry_svc, output_for
from modelyard_cli.output import message_dict
from modelyard_cli.render.model_values import ModelStatusName, SplitName, status_value
from modelyard_cli.render.models import rollback_lines, version_line, version_view, versions_table

MAX_PAGE_SIZE = 100  # ListVersions' limit per page
DEFAULT_ENVIRONMENT = "production"

VersionId = Annotated[
    str,
    typer.Argument(
        metavar="VERSION_ID", help="The model version's id (see `yard models list`).", show_default=False
    ),
]
RequiredReason = Annotated[
    str, typer.Option("--reason", help="Why; recorded in the version's events (audit).", show_default=False)
]
Environment = Annotated[str, typer.Option("--env", help="The environment the release is for.")]


def list_versions(
    ctx: typer.Context,
    org: Annotated[str | None, typer.Option(help="Only this organization's versions.")] = None,
    module: Annotated[str | None, typer.Option(help="Only versions of this AI module.")] = None,
    status: Annotated[
        list[ModelStatusName] | None, typer.Option(help="Only versions in this status (repeat for several).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many versions.")] = 50,
    all_pages: Annotated[bool, typer.Option("--all", help="Every matching version (all pages).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List model versions (ListVersions, following pages)."""
    request = registry_pb2.ListVersionsRequest(
        org_id=org or "", ai_module=module or "", statuses=[status_value(s) for s in status or []]
    )
    versions: registry_pb2.ListVersionsResponse = call_registry_svc(
        ctx, lambda svc: fetch_versions(svc, request, None if all_pages else limit)
    )
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(versions))
        return
    out.show(versions_table(versions.versions))
    if versions.next_page_token:
        out.hint(f"showing the first {len(versions.versions)} versions; --all or a larger --limit for more")


async def fetch_versions(
    svc: RegistrySvc, request: registry_pb2.ListVersionsRequest, limit: int | None
) -> registry_pb2.ListVersionsResponse:
    """Pages of ListVersions until `limit` versions (None: all) or the last page; keeps the next token."""
    result = registry_pb2.ListVersionsResponse()
    while True:
        wanted = MAX_PAGE_SIZE if limit is None else limit - len(result.versions)
        request.page_size = min(wanted, MAX_PAGE_SIZE)
        page: registry_pb2.ListVersionsResponse = await svc.registry.ListVersions(request)
        result.versions.extend(page.versions[: request.page_size])
        result.next_page_token = page.next_page_token
        if not page.next_page_token or (limit is not None and len(result.versions) >= limit):
            return result
        request.page_token = page.next_page_token


def show(ctx: typer.Context, version_id: VersionId, as_json: JsonFlag = False) -> None:
    """Show one version in full: lineage, artifact, config, metrics, evaluation, gates, approval, release."""
    request = registry_pb2.ModelVersionRef(version_id=version_id)
    version = call_registry_svc(ctx, lambda svc: svc.registry.GetVersion(request))
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(version))
    else:
        out.show(version_view(version))


def evaluate(
    ctx: typer.Context,
    version_id: VersionId,
    dataset: Annotated[
        str | None, typer.Option(help="The dataset:// URI to test on (default: the training version).")
    ] = None,
    split: Annotated[
        SplitName | None,
        typer.Option(help="The held-out split (default: val on the training data, else test)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start testing a draft: queue an evaluation run on a held-out split (EvaluateVersion)."""
    request = registry_pb2.EvaluateRequest(
        version_id=version_id, dataset_uri=dataset or "", split=split.value if split else ""
    )
    _send(ctx, lambda svc: svc.registry.EvaluateVersion(request), as_json)


def approve(ctx: typer.Context, version_id: VersionId, as_json: JsonFlag = False) -> None:
    """Approve a tested version that passes its gates (four eyes); the registry signs its manifest."""
    request = registry_pb2.VersionCommand(version_id=version_id)
    _send(ctx, lambda svc: svc.registry.ApproveVersion(request), as_json, approval_advice)


def reject(
    ctx: typer.Context, version_id: VersionId, reason: RequiredReason, as_json: JsonFlag = False
) -> None:
    """Reject a tested or approved version: it goes back to draft, with the reason."""
    request = registry_pb2.VersionCommand(version_id=version_id, reason=reason)
    _send(ctx, lambda svc: svc.registry.RejectVersion(request), as_json)


def release(
    ctx: typer.Context,
    version_id: VersionId,
    notes: Annotated[str, typer.Option("--notes", help="The release notes.", show_default=False)],
    environment: Environment = DEFAULT_ENVIRONMENT,
    as_json: JsonFlag = False,
) -> None:
    """Release an approved version to an environment (it becomes the current release there)."""
    request = registry_pb2.ReleaseRequest(version_id=version_id, environment=environment, release_notes=notes)
    _send(ctx, lambda svc: svc.registry.ReleaseVersion(request), as_json, release_advice)


def deprecate(
    ctx: typer.Context, version_id: VersionId, reason: RequiredReason, as_json: JsonFlag = False
) -> None:
    """Deprecate an approved or released version (final): it stops being the current release anywhere."""
    request = registry_pb2.VersionCommand(version_id=version_id, reason=reason)
    _send(ctx, lambda svc: svc.registry.DeprecateVersion(request), as_json)


def rollback(
    ctx: typer.Context,
    target_version_id: Annotated[
        str,
        typer.Argument(
            metavar="TARGET_VERSION_ID", help="The earlier version to release again.", show_default=False
        ),
    ],
    reason: RequiredReason,
    environment: Environment = DEFAULT_ENVIRONMENT,
    as_json: JsonFlag = False,
) -> None:
    """Release an earlier version again and deprecate the current release of the environment."""
    request = registry_pb2.RollbackRequest(
        target_version_id=target_version_id, environment=environment, reason=reason
    )
    response: registry_pb2.RollbackResponse = call_registry_svc(
        ctx, lambda svc: svc.registry.RollbackVersion(request)
    )
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(response))
    else:
        out.lines(rollback_lines(response))


def renumber(
    ctx: typer.Context,
    version_id: VersionId,
    semantic_version: Annotated[
        str, typer.Argument(metavar="SEMVER", help="The new number, e.g. 2.0.0.", show_default=False)
    ],
    reason: RequiredReason,
    as_json: JsonFlag = False,
) -> None:
    """Give a draft version another semantic version number."""
    request = registry_pb2.RenumberRequest(
        version_id=version_id, semantic_version=semantic_version, reason=reason
    )
    _send(ctx, lambda svc: svc.registry.RenumberVersion(request), as_json)


def approval_advice(error: aio.AioRpcError) -> list[str]:
    """What an approval refusal usually means (four eyes, an evaluation not finished or failing its gates)."""
    if error.code() is grpc.StatusCode.PERMISSION_DENIED:
        return [
            "approval needs a super admin who neither created the training job nor requested the evaluation"
        ]
    if error.code() is grpc.StatusCode.FAILED_PRECONDITION:
        return [
            "approval needs a tested version whose evaluation has finished and passes the module's gates "
            "(`yard models show VERSION_ID` shows both)"
        ]
    return []


def release_advice(error: aio.AioRpcError) -> list[str]:
    """What a release refusal usually means (the plan's limit of active versions per module)."""
    if error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return [
            "`yard models list --module MODULE --status released` lists the active versions; "
            "`yard models deprecate VERSION_ID --reason …` frees a place"
        ]
    return []


def _send(
    ctx: typer.Context,
    rpc: Callable[[RegistrySvc], Awaitable[Any]],
    as_json: bool,
    advice: Advice | None = None,
) -> None:
    version: registry_pb2.ModelVersion = call_registry_svc(ctx, rpc, advice)
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(version))
    else:
        out.lines([version_line(version)])
