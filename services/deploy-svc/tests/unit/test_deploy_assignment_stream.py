"""The assignment stream against a fake reader and hand-fed notices: what is sent, once, and when."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from modelyard.v1 import deploy_pb2
from modelyard_deploy.api.assignments import assignments
from modelyard_deploy.projections.rows import DeploymentRow
from modelyard_events.notifications import ViewChanges
from modelyard_events.schemas.deploy import HealthLimits

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _row(deployment_id: str, status: str = "pending", attempt: int = 1) -> DeploymentRow:
    return DeploymentRow(
        deployment_id=deployment_id, org_id="acme", server_id="edge-1", version_id="v2", ai_module="reader",
        semantic_version="1.1.0", artifact_sha256="ab" * 32, artifact_size_bytes=10, status=status,
        phase=status, progress_percent=0, scheduled_at=NOW, started_at=None, completed_at=None,
        error_message="", retry_count=attempt - 1, max_retries=3, backoff_base_s=10.0, attempt=attempt,
        retry_at=None, deadline_at=NOW + timedelta(hours=1), rollout_id=None, wave=None, kind="deploy",
        previous_version_id=None, health_limits=HealthLimits(), health=None, created_by="carol", reason="",
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip


class _Reader:
    """The two reads the stream makes, over a dict of deployments the test edits."""

    def __init__(self) -> None:
        self.rows: dict[str, DeploymentRow] = {}
        self.next_at: datetime | None = None

    async def assignments(
        self, org_id: str, server_id: str, now: datetime
    ) -> tuple[list[DeploymentRow], datetime | None]:
        due = [r for r in self.rows.values() if r.status in ("pending", "downloading", "installing")]
        return due, self.next_at

    async def cancelled_among(self, org_id: str, server_id: str, ids: list[str]) -> list[str]:
        return [i for i in ids if i in self.rows and self.rows[i].status == "cancelled"]


class _Harness:
    def __init__(self) -> None:
        self.reader = _Reader()
        self.changes = ViewChanges("postgresql://unused", "unused")
        self.stream = assignments(self.reader, self.changes, "acme", "edge-1", lambda: NOW)  # type: ignore[arg-type]

    async def next(self, timeout_s: float = 2.0) -> deploy_pb2.Assignment:
        return await asyncio.wait_for(anext(self.stream), timeout_s)

    def notify(self, kind: str = "deployment") -> None:
        self.changes._publish("acme/edge-1", kind)

    async def nothing_within(self, timeout_s: float = 0.3) -> bool:
        task = asyncio.ensure_future(anext(self.stream))
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if done:
            return False
        self.pending = task
        return True


async def test_a_due_deployment_is_sent_once_and_again_for_its_next_attempt() -> None:
    h = _Harness()
    h.reader.rows["d1"] = _row("d1")
    first = await h.next()
    assert (first.deployment_id, first.attempt, first.cancelled) == ("d1", 1, False)
    assert first.artifact_sha256 == "ab" * 32
    h.reader.rows["d1"] = replace(h.reader.rows["d1"], status="downloading")
    h.notify()
    assert await h.nothing_within()  # the same attempt is not sent twice
    h.reader.rows["d1"] = _row("d1", attempt=2)
    h.notify()
    again = await asyncio.wait_for(h.pending, 2.0)
    assert (again.deployment_id, again.attempt) == ("d1", 2)


async def test_a_sent_deployment_that_is_cancelled_is_sent_again_as_cancelled() -> None:
    h = _Harness()
    h.reader.rows["d1"] = _row("d1")
    await h.next()
    h.reader.rows["d1"] = replace(h.reader.rows["d1"], status="cancelled")
    h.notify()
    cancelled = await h.next()
    assert (cancelled.deployment_id, cancelled.cancelled) == ("d1", True)


async def test_a_deployment_scheduled_later_is_sent_when_its_time_comes_without_a_notice() -> None:
    h = _Harness()
    h.reader.next_at = NOW + timedelta(seconds=0.2)  # the clock is frozen: the stream waits 0.2 s
    assert await h.nothing_within(0.1)
    h.reader.rows["d1"] = _row("d1")
    h.reader.next_at = None
    sent = await asyncio.wait_for(h.pending, 2.0)
    assert sent.deployment_id == "d1"


async def test_progress_notices_do_not_wake_the_stream() -> None:
    h = _Harness()
    assert await h.nothing_within(0.05)  # the stream is waiting (idle recheck: 15 s)
    h.reader.rows["d1"] = _row("d1")
    h.notify("progress")
    await asyncio.sleep(0.2)
    assert not h.pending.done()
    h.notify()
    assert (await asyncio.wait_for(h.pending, 2.0)).deployment_id == "d1"
