"""`yard deploy status [--watch]` and `yard deploy start --wait`: a rollout and a progress bar per server.

There is no watch RPC: the watch polls GetRollout and ListDeployments(rollout_id) every `interval`
seconds until the rollout has finished. On a terminal the view redraws in place (rich Live); piped,
it prints one line per change of a server or of the rollout, then the final view; with --json, one
JSON line per change. A deploy-svc that stops answering for a while (a restart) is waited for, up to
UNREACHABLE_GRACE_S.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

import grpc
import typer
from grpc import aio
from rich.live import Live

from modelyard.v1 import deploy_pb2
from modelyard_cli.commands.deploy_pages import collect_pages
from modelyard_cli.connection import DeploySvc
from modelyard_cli.invocation import call_deploy_svc
from modelyard_cli.output import Output, message_dict
from modelyard_cli.render.deploy_values import deployment_status_name
from modelyard_cli.render.rollouts import rollout_line, rollout_view

UNREACHABLE_GRACE_S = 30.0
_UNAMBIGUOUSLY_FINISHED = frozenset(
    {
        deploy_pb2.ROLLOUT_STATE_COMPLETED,
        deploy_pb2.ROLLOUT_STATE_ROLLED_BACK,
        deploy_pb2.ROLLOUT_STATE_CANCELLED,
    }
)


@dataclass(frozen=True, slots=True)
class RolloutSnapshot:
    """A rollout and its deployments as read together."""

    rollout: deploy_pb2.Rollout
    deployments: Sequence[deploy_pb2.Deployment]


class RolloutView(Protocol):
    """Where each poll's snapshot goes."""

    def show(self, snapshot: RolloutSnapshot) -> None: ...

    def finish(self, snapshot: RolloutSnapshot) -> None: ...


def is_finished(rollout: deploy_pb2.Rollout) -> bool:
    """True once the rollout has ended. Running, scheduled or rolling back (a halt that rolls back, or
    a rollback asked of a rollout that had finished) is not the end; a halt is, unless it is still to
    roll back."""
    if rollout.state in _UNAMBIGUOUSLY_FINISHED:
        return True
    if rollout.state == deploy_pb2.ROLLOUT_STATE_HALTED:
        return rollout.HasField("finished_at") or not rollout.rollback_on_failure
    return False


def watch_rollout(
    ctx: typer.Context, rollout_id: str, out: Output, interval: float, follow: bool = True
) -> None:
    """Show the rollout once, or (`follow`) until it finishes, then exit 0 if it completed, else 1."""
    if not follow:
        snapshot = call_deploy_svc(ctx, lambda svc: read_snapshot(svc, rollout_id))
        if out.as_json:
            out.document(_snapshot_document(snapshot))
        else:
            out.show(rollout_view(snapshot.rollout, snapshot.deployments))
        return None
    view = _view_for(out)
    with view:
        final = call_deploy_svc(ctx, lambda svc: poll_until_finished(svc, rollout_id, view, interval, out))
        view.finish(final)
    raise typer.Exit(0 if final.rollout.state == deploy_pb2.ROLLOUT_STATE_COMPLETED else 1)


async def read_snapshot(svc: DeploySvc, rollout_id: str) -> RolloutSnapshot:
    """GetRollout, then every page of the rollout's deployments."""
    rollout = await svc.deploy.GetRollout(deploy_pb2.RolloutRef(rollout_id=rollout_id))
    request = deploy_pb2.ListDeploymentsRequest(rollout_id=rollout_id)
    found = await collect_pages(svc.deploy.ListDeployments, request, "deployments", None)
    return RolloutSnapshot(rollout, list(found.deployments))


async def poll_until_finished(
    svc: DeploySvc, rollout_id: str, view: RolloutView, interval: float, out: Output
) -> RolloutSnapshot:
    """Read a snapshot every `interval` seconds, hand it to `view`, and return the first finished one."""
    unreachable_since: float | None = None
    while True:
        try:
            snapshot = await read_snapshot(svc, rollout_id)
        except aio.AioRpcError as error:
            if error.code() is not grpc.StatusCode.UNAVAILABLE:
                raise
            now = time.monotonic()
            if unreachable_since is None:
                unreachable_since = now
                out.hint(f"deploy-svc is not answering ({error.details()}); waiting for it")
            elif now - unreachable_since > UNREACHABLE_GRACE_S:
                raise
            await asyncio.sleep(interval)
            continue
        unreachable_since = None
        view.show(snapshot)
        if is_finished(snapshot.rollout):
            return snapshot
        await asyncio.sleep(interval)


def _view_for(out: Output) -> LiveView | ChangeLines | JsonChanges:
    if out.as_json:
        return JsonChanges(out)
    if out.console.is_terminal:
        return LiveView(out)
    return ChangeLines(out)


def _snapshot_document(snapshot: RolloutSnapshot) -> dict[str, object]:
    return {
        "rollout": message_dict(snapshot.rollout),
        "deployments": [message_dict(d) for d in snapshot.deployments],
    }


class _NoContext:
    def __enter__(self) -> _NoContext:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class LiveView:
    """The rollout view redrawn in place on a terminal."""

    def __init__(self, out: Output) -> None:
        self._out = out
        self._live = Live(console=out.console, refresh_per_second=4, auto_refresh=False)

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.stop()

    def show(self, snapshot: RolloutSnapshot) -> None:
        """Redraw with this snapshot."""
        self._live.update(rollout_view(snapshot.rollout, snapshot.deployments), refresh=True)

    def finish(self, snapshot: RolloutSnapshot) -> None:
        """Leave the last view on screen."""
        self.show(snapshot)


class ChangeLines(_NoContext):
    """One line per change of the rollout or of a server's deployment, then the final view (for logs)."""

    def __init__(self, out: Output) -> None:
        self._out = out
        self._seen: dict[str, tuple[object, ...]] = {}

    def show(self, snapshot: RolloutSnapshot) -> None:
        """Print what changed since the last snapshot."""
        rollout = snapshot.rollout
        key = (rollout.state, rollout.current_wave, rollout.halt_reason)
        if self._seen.get(rollout.rollout_id) != key:
            self._seen[rollout.rollout_id] = key
            self._out.lines([rollout_line(rollout)])
        for d in snapshot.deployments:
            state = (d.status, d.phase, d.progress_percent, d.retry_count, d.error_message)
            if self._seen.get(d.deployment_id) != state:
                self._seen[d.deployment_id] = state
                self._out.lines([_change_line(d)])

    def finish(self, snapshot: RolloutSnapshot) -> None:
        """Print the final view."""
        self._out.show(rollout_view(snapshot.rollout, snapshot.deployments))


class JsonChanges(ChangeLines):
    """One JSON line per change of the rollout or of a deployment."""

    def show(self, snapshot: RolloutSnapshot) -> None:
        """Print what changed since the last snapshot, as JSON lines."""
        rollout = snapshot.rollout
        for key, message, kind in (
            (rollout.rollout_id, rollout, "rollout"),
            *((d.deployment_id, d, "deployment") for d in snapshot.deployments),
        ):
            document = message_dict(message)
            if self._seen.get(key) != (document,):
                self._seen[key] = (document,)
                self._out.json_line({kind: document})

    def finish(self, snapshot: RolloutSnapshot) -> None:
        """Nothing more: the last lines were the final state."""


def _change_line(d: deploy_pb2.Deployment) -> str:
    who = f"{d.server_id} (rollback)" if d.kind == "rollback" else d.server_id
    status = deployment_status_name(d.status)
    line = f"  {who}: {status}"
    if d.phase and d.phase != status:
        line += f" {d.phase}"
    line += f" {d.progress_percent}%"
    if d.retry_count:
        line += f" (retry {d.retry_count}/{d.max_retries})"
    if d.error_message:
        line += f": {d.error_message}"
    return line
