"""`yard deploy start | status | list | cancel | retry | rollback | deployments`: staged rollouts of released
model versions to edge servers, and the deployments they make (deploy-svc).

A refused command prints the server's message as it was written (`error: FAILED_PRECONDITION: …`: a
version that is not released, a server whose edge version or platform the version does not support)
and exits 2; `start --wait` and `status --watch` exit 0 when the rollout completed and 1 when it
halted, rolled back or was cancelled.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import grpc
import typer
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio

from modelyard.v1 import deploy_pb2
from modelyard_cli.commands.deploy_pages import collect_pages
from modelyard_cli.commands.deploy_watch import watch_rollout
from modelyard_cli.commands.options import JsonFlag
from modelyard_cli.invocation import call_deploy_svc, output_for
from modelyard_cli.output import Output, fail, message_dict
from modelyard_cli.render.deploy_values import DeploymentStatusName, deployment_status_value
from modelyard_cli.render.edge import deployment_lines, deployments_table
from modelyard_cli.render.rollouts import rollout_line, rollouts_table

RolloutId = Annotated[
    str,
    typer.Argument(
        metavar="ROLLOUT_ID", help="The rollout's id (see `yard deploy list`).", show_default=False
    ),
]
DeploymentId = Annotated[
    str,
    typer.Argument(
        metavar="DEPLOYMENT_ID",
        help="The deployment's id (see `yard deploy deployments`).",
        show_default=False,
    ),
]
RequiredReason = Annotated[
    str, typer.Option("--reason", help="Why; recorded in the events (audit).", show_default=False)
]
Org = Annotated[
    str | None, typer.Option("--org", help="The organization (default: your token's).", show_default=False)
]
Limit = Annotated[int, typer.Option(min=1, help="At most this many.")]
AllPages = Annotated[bool, typer.Option("--all", help="Every match (all pages).")]
Interval = Annotated[float, typer.Option("--interval", min=0.05, help="Seconds between polls.", hidden=True)]


def start(
    ctx: typer.Context,
    version_id: Annotated[
        str, typer.Argument(metavar="VERSION_ID", help="A released model version.", show_default=False)
    ],
    servers: Annotated[
        list[str] | None,
        typer.Option("--server", help="A server to deploy to (repeat for several).", show_default=False),
    ] = None,
    all_servers: Annotated[
        bool, typer.Option("--all", help="Every server of the environment (--environment).")
    ] = False,
    environment: Annotated[
        str | None,
        typer.Option(help="With --all: the environment (default: the version's).", show_default=False),
    ] = None,
    waves: Annotated[
        str | None,
        typer.Option(
            help="Wave sizes, e.g. 1,2,5 (default: a canary of 1, then the rest).", show_default=False
        ),
    ] = None,
    failure_threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="A wave failing more than this ratio halts (default 0).",
            show_default=False,
        ),
    ] = None,
    rollback_on_failure: Annotated[
        bool, typer.Option("--rollback-on-failure", help="A halt rolls the completed servers back.")
    ] = False,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Start at this ISO 8601 time (UTC without an offset).", show_default=False),
    ] = None,
    deadline_s: Annotated[
        int | None,
        typer.Option(
            min=1, help="A deployment not done after this fails (default 3600).", show_default=False
        ),
    ] = None,
    max_retries: Annotated[
        int | None,
        typer.Option(min=0, help="Retries of a failed deployment (default 3).", show_default=False),
    ] = None,
    backoff_s: Annotated[
        float | None,
        typer.Option(min=0.0, help="First retry's delay, doubling (default 10).", show_default=False),
    ] = None,
    max_load_time_ratio: Annotated[
        float | None,
        typer.Option(min=0.0, help="Health gate: new/old load time at most.", show_default=False),
    ] = None,
    max_p95_latency_ratio: Annotated[
        float | None,
        typer.Option(min=0.0, help="Health gate: new/old p95 latency at most.", show_default=False),
    ] = None,
    min_agreement: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Health gate: agreement with the old model at least.", show_default=False
        ),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded in the rollout's events.")] = "",
    org: Org = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the rollout until it finishes.")] = False,
    interval: Interval = 1.0,
    as_json: JsonFlag = False,
) -> None:
    """Start a rollout of a released version to servers (--server …) or an environment (--all), in waves."""
    if bool(servers) == all_servers:
        fail("error: name the servers (--server S, repeated) or pass --all, not both")
    if environment and not all_servers:
        fail("error: --environment goes with --all (--server names the servers themselves)")
    request = deploy_pb2.StartRolloutRequest(
        version_id=version_id,
        server_ids=servers or [],
        all_servers=all_servers,
        environment=environment or "",
        wave_sizes=_wave_sizes(waves),
        rollback_on_failure=rollback_on_failure,
        reason=reason,
        org_id=org or "",
        health=deploy_pb2.HealthLimits(
            **_given(
                max_load_time_ratio=max_load_time_ratio,
                max_p95_latency_ratio=max_p95_latency_ratio,
                min_agreement=min_agreement,
            )
        ),
    )
    given = _given(
        failure_threshold=failure_threshold,
        deadline_s=deadline_s,
        max_retries=max_retries,
        backoff_base_s=backoff_s,
    )
    for name, value in given.items():
        setattr(request, name, value)
    if at is not None:
        request.scheduled_at.CopyFrom(_timestamp(at))
    rollout: deploy_pb2.Rollout = call_deploy_svc(
        ctx, lambda svc: svc.deploy.StartRollout(request), start_advice
    )
    out = output_for(ctx, as_json)
    if not wait:
        _show_rollout(out, rollout)
        return
    watch_rollout(ctx, rollout.rollout_id, out, interval)  # its first line is the rollout's


def status(
    ctx: typer.Context,
    rollout_id: RolloutId,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh until the rollout finishes.")] = False,
    interval: Interval = 1.0,
    as_json: JsonFlag = False,
) -> None:
    """A rollout's state, its waves and a progress bar per server (--watch: until it finishes)."""
    watch_rollout(ctx, rollout_id, output_for(ctx, as_json), interval, follow=watch)


def list_rollouts(
    ctx: typer.Context,
    version: Annotated[
        str | None, typer.Option("--version", help="Only this version's rollouts.", show_default=False)
    ] = None,
    org: Org = None,
    limit: Limit = 50,
    all_pages: AllPages = False,
    as_json: JsonFlag = False,
) -> None:
    """List rollouts, newest first."""
    request = deploy_pb2.ListRolloutsRequest(org_id=org or "", version_id=version or "")
    rollouts: deploy_pb2.ListRolloutsResponse = call_deploy_svc(
        ctx,
        lambda svc: collect_pages(svc.deploy.ListRollouts, request, "rollouts", None if all_pages else limit),
    )
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(rollouts))
        return
    out.show(rollouts_table(rollouts.rollouts))
    if rollouts.next_page_token:
        out.hint(f"showing the first {len(rollouts.rollouts)} rollouts; --all or a larger --limit for more")


def cancel(
    ctx: typer.Context,
    rollout_id: Annotated[
        str | None, typer.Argument(metavar="[ROLLOUT_ID]", help="The rollout to cancel.", show_default=False)
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option("--deployment", help="Cancel this one deployment instead.", show_default=False),
    ] = None,
    reason: RequiredReason = "",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Cancel a rollout (its unfinished deployments stop) or one deployment, even with its agent offline."""
    if bool(rollout_id) == bool(deployment):
        fail("error: name a rollout (ROLLOUT_ID) or a deployment (--deployment ID), one of them")
    if not reason:
        fail("error: --reason is required: say why (it is recorded in the events)")
    what = f"rollout {rollout_id}" if rollout_id else f"deployment {deployment}"
    if not yes and not typer.confirm(f"Cancel {what}?", err=True):
        fail(f"{what} not cancelled", exit_code=1)
    out = output_for(ctx, as_json)
    if rollout_id:
        command = deploy_pb2.RolloutCommand(rollout_id=rollout_id, reason=reason)
        _show_rollout(out, call_deploy_svc(ctx, lambda svc: svc.deploy.CancelRollout(command)))
    else:
        request = deploy_pb2.DeploymentCommand(deployment_id=deployment or "", reason=reason)
        _show_deployment(out, call_deploy_svc(ctx, lambda svc: svc.deploy.CancelDeployment(request)))


def retry(
    ctx: typer.Context,
    deployment_id: DeploymentId,
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded in the events.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Retry a failed or cancelled deployment now (a new attempt, with a new deadline)."""
    request = deploy_pb2.DeploymentCommand(deployment_id=deployment_id, reason=reason)
    _show_deployment(
        output_for(ctx, as_json), call_deploy_svc(ctx, lambda svc: svc.deploy.RetryDeployment(request))
    )


def rollback(
    ctx: typer.Context, rollout_id: RolloutId, reason: RequiredReason, as_json: JsonFlag = False
) -> None:
    """Put every server this rollout changed back to the version it ran before."""
    command = deploy_pb2.RolloutCommand(rollout_id=rollout_id, reason=reason)
    rollout = call_deploy_svc(ctx, lambda svc: svc.deploy.RollbackRollout(command))
    _show_rollout(output_for(ctx, as_json), rollout)


def deployments(
    ctx: typer.Context,
    version: Annotated[
        str | None, typer.Option("--version", help="Only this version's.", show_default=False)
    ] = None,
    server: Annotated[
        str | None, typer.Option("--server", help="Only this server's.", show_default=False)
    ] = None,
    rollout: Annotated[
        str | None, typer.Option("--rollout", help="Only this rollout's.", show_default=False)
    ] = None,
    status: Annotated[
        list[DeploymentStatusName] | None,
        typer.Option("--status", help="Only in this status (repeat for several)."),
    ] = None,
    org: Org = None,
    limit: Limit = 50,
    all_pages: AllPages = False,
    as_json: JsonFlag = False,
) -> None:
    """List deployments (the seed's model_deployments): status, progress, retries, error."""
    request = deploy_pb2.ListDeploymentsRequest(
        org_id=org or "",
        version_id=version or "",
        server_id=server or "",
        rollout_id=rollout or "",
        statuses=[deployment_status_value(s) for s in status or []],
    )
    found: deploy_pb2.ListDeploymentsResponse = call_deploy_svc(
        ctx,
        lambda svc: collect_pages(
            svc.deploy.ListDeployments, request, "deployments", None if all_pages else limit
        ),
    )
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(found))
        return
    out.show(deployments_table(found.deployments))
    if found.next_page_token:
        out.hint(
            f"showing the first {len(found.deployments)} deployments; --all or a larger --limit for more"
        )


def start_advice(error: aio.AioRpcError) -> list[str]:
    """What a refused rollout usually means."""
    if error.code() is grpc.StatusCode.FAILED_PRECONDITION:
        return [
            "a rollout needs a released, not deprecated version (`yard models show VERSION_ID`) and servers "
            "whose edge version and platform it supports (`yard edge show SERVER`)"
        ]
    return []


def _wave_sizes(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        fail(f"error: --waves takes sizes separated by commas, e.g. 1,2,5 (not {text!r})")
    if any(size < 1 for size in sizes):
        fail("error: every wave holds at least one server")
    return sizes


def _timestamp(text: str) -> Timestamp:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"error: --at takes an ISO 8601 time such as 2026-12-02T18:00:00Z (not {text!r})")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def _given(**values: float | int | None) -> dict[str, float | int]:
    """The options that were given (unset optional fields take deploy-svc's defaults)."""
    return {name: value for name, value in values.items() if value is not None}


def _show_rollout(out: Output, rollout: deploy_pb2.Rollout) -> None:
    if out.as_json:
        out.document(message_dict(rollout))
    else:
        out.lines([rollout_line(rollout)])


def _show_deployment(out: Output, deployment: deploy_pb2.Deployment) -> None:
    if out.as_json:
        out.document(message_dict(deployment))
    else:
        out.lines(deployment_lines(deployment))
