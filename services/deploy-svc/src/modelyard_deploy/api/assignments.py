"""StreamAssignments: every deployment a server should carry out, as it becomes due, and its cancels.

Subscribes to the server's notices before the first read, so no change between the read and the
subscription is lost. Each (deployment, attempt) is sent once per stream: a pending deployment
whose time has come, or one downloading or installing (an agent that restarts mid-download gets it
again and resumes). A deployment this stream sent that is then cancelled is sent once more with
cancelled=True. Between changes it sleeps until the next scheduled deployment is due, rechecking
at least every IDLE_RECHECK_S (a notice lost with a dropped LISTEN connection costs that much).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from modelyard.v1 import deploy_pb2
from modelyard_deploy.api.convert import health_limits_to_proto, timestamp
from modelyard_deploy.projections.queries import DeployViewReader
from modelyard_deploy.projections.rows import DeploymentRow
from modelyard_deploy.projections.views import PROGRESS
from modelyard_events.notifications import Notice, ViewChanges
from modelyard_events.schemas.deploy import edge_server_stream_id

IDLE_RECHECK_S = 15.0
_MIN_WAIT_S = 0.05


async def assignments(
    reader: DeployViewReader,
    changes: ViewChanges,
    org_id: str,
    server_id: str,
    clock: Callable[[], datetime],
) -> AsyncIterator[deploy_pb2.Assignment]:
    """The server's assignments until the client goes away."""
    sent: dict[str, int] = {}  # deployment id → the attempt this stream sent
    with changes.subscription(edge_server_stream_id(org_id, server_id)) as notices:
        while True:
            now = clock()
            due, next_at = await reader.assignments(org_id, server_id, now)
            for row in due:
                if sent.get(row.deployment_id) != row.attempt:
                    sent[row.deployment_id] = row.attempt
                    yield assignment(row)
            due_ids = {row.deployment_id for row in due}
            gone = [d for d in sent if d not in due_ids]
            for deployment_id in await reader.cancelled_among(org_id, server_id, gone):
                yield deploy_pb2.Assignment(
                    deployment_id=deployment_id, attempt=sent[deployment_id], cancelled=True
                )
            # Only what is still due needs remembering; a retried one comes back with a new attempt.
            sent = {d: a for d, a in sent.items() if d in due_ids}
            wait = IDLE_RECHECK_S if next_at is None else min(IDLE_RECHECK_S, (next_at - now).total_seconds())
            await _next_notice(notices, max(wait, _MIN_WAIT_S))


def assignment(row: DeploymentRow) -> deploy_pb2.Assignment:
    """What the agent needs to carry out one deployment (it asks the registry for the download URL)."""
    return deploy_pb2.Assignment(
        deployment_id=row.deployment_id,
        version_id=row.version_id,
        ai_module=row.ai_module,
        semantic_version=row.semantic_version,
        artifact_sha256=row.artifact_sha256,
        artifact_size_bytes=row.artifact_size_bytes,
        attempt=row.attempt,
        health=health_limits_to_proto(row.health_limits),
        deadline_at=timestamp(row.deadline_at),
        kind=row.kind,
    )


async def _next_notice(notices: asyncio.Queue[Notice], timeout_s: float) -> None:
    """Wait for a notice that may change the assignments (or the timeout); notices that piled up are
    coalesced into one re-read. An install's progress never does, so it does not wake the stream."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return
        try:
            _, kind = await asyncio.wait_for(notices.get(), left)
        except TimeoutError:
            return
        if kind != PROGRESS:
            break
    while not notices.empty():
        notices.get_nowait()
