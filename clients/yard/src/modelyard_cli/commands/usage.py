"""`yard usage`: an organization's usage next to its plan's limits (job-svc's AuditService/GetUsage).

Read-only, over job-svc's address (--target / MODELYARD_JOB_SVC_TARGET). super_admin and auditor
tokens read any organization (name it with `--org`, or the dev token's `--org` before the command);
an org_admin's token reads its own (the default when `--org` is left out). Figures come from job-svc's
usage view, a moment behind the logs; each limit is enforced where the resource is created.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from modelyard.v1 import audit_pb2, audit_pb2_grpc
from modelyard_cli.commands.options import JsonFlag
from modelyard_cli.connection import JOB_SVC
from modelyard_cli.invocation import _call, cli_state, output_for
from modelyard_cli.output import message_dict
from modelyard_cli.render.values import cells, format_bytes

UNLIMITED = "unlimited"


def usage_rows(usage: audit_pb2.Usage) -> list[tuple[str, str, str, str]]:
    """(resource, used, limit, left) for each limited resource; "unlimited" where the plan sets none."""

    def row(resource: str, used: int, limit: int | None, show: Any = str) -> tuple[str, str, str, str]:
        if limit is None:
            return resource, show(used), UNLIMITED, UNLIMITED
        return resource, show(used), show(limit), show(max(0, limit - used))

    def limit_of(message: Any, field: str) -> int | None:
        return int(getattr(message, field)) if message.HasField(field) else None

    rows = [
        row(f"training jobs ({usage.month})", usage.jobs_this_month, limit_of(usage, "jobs_limit")),
        row("dataset data", usage.dataset_bytes, limit_of(usage, "dataset_bytes_limit"), format_bytes),
    ]
    rows += [
        row(f"active models: {m.ai_module}", m.active_models, limit_of(m, "limit")) for m in usage.modules
    ]
    if not usage.modules:  # no module has an active model yet: still show the per-module limit
        rows.append(row("active models per module", 0, limit_of(usage, "active_models_limit")))
    return rows


def usage(
    ctx: typer.Context,
    org: Annotated[
        str, typer.Option("--org", help="The organization (an org_admin: its own, the default).")
    ] = "",
    as_json: JsonFlag = False,
) -> None:
    """Training jobs this month, dataset data and active models per module, next to the plan's limits."""
    state = cli_state(ctx)
    request = audit_pb2.UsageRequest(org_id=org or state.connection.org_id or "")
    found: audit_pb2.Usage = _call(
        ctx,
        state.connection.target,
        JOB_SVC,
        audit_pb2_grpc.AuditServiceStub,
        lambda stub: stub.GetUsage(request),
    )
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(found))
        return
    table = Table("resource", "used", "limit", "left", title=f"{found.org_id}: {found.plan_name} plan")
    for resource_row in usage_rows(found):
        table.add_row(*cells(*resource_row))
    out.show(table)
