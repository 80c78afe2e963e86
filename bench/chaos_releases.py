"""The fault campaign's release workload: each version a training job registered is evaluated (by
"dev"), approved and released (by "carol": four eyes) and rolled out to every edge server, through
registry-svc's and deploy-svc's gRPC APIs, with the same ledger and retries as the rest of the
workload (chaos_workload)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from chaos_workload import CALL_TIMEOUT_S, MODULE, ORG, Workload

from modelyard.v1 import deploy_pb2, deploy_pb2_grpc, registry_pb2, registry_pb2_grpc

ENVIRONMENT = "production"
# Health limits far from what a busy 2-core machine measures: the campaign is about faults, not speed.
LENIENT = deploy_pb2.HealthLimits(load_time_slack_ms=60_000, latency_slack_ms=10_000)


@dataclass
class Releases:
    """The release loop, on the workload's clients and ledger."""

    workload: Workload

    async def run(self, stop: asyncio.Event) -> None:
        """Each completed job's version: evaluated (dev), approved and released (carol), rolled out."""
        done: set[str] = set()
        while not stop.is_set():
            version = await self.next_registered(done)
            if version is None:
                await asyncio.sleep(2.0)
                continue
            done.add(version.version_id)
            await self.release_and_roll_out(version.version_id)

    async def next_registered(self, done: set[str]) -> registry_pb2.ModelVersion | None:
        """A draft version of the workload's module not yet taken, if the registry lists one."""
        request = registry_pb2.ListVersionsRequest(org_id=ORG, ai_module=MODULE, page_size=100)
        listed = await self.workload.call(
            self.workload.running.registry_target,
            "ListVersions",
            lambda ch: _registry(ch).ListVersions(request, timeout=5),
        )
        drafts = [
            v
            for v in (listed.versions if listed is not None else [])
            if v.version_id not in done and v.status == registry_pb2.MODEL_STATUS_DRAFT
        ]
        return drafts[0] if drafts else None

    async def release_and_roll_out(self, version_id: str) -> None:
        """Evaluate, approve, release, roll out to every edge server (stops at the first refusal)."""
        ref = registry_pb2.VersionCommand(version_id=version_id)
        evaluate = registry_pb2.EvaluateRequest(version_id=version_id)
        release = registry_pb2.ReleaseRequest(
            version_id=version_id, environment=ENVIRONMENT, release_notes="fault campaign"
        )
        asked = await self.registry(
            "EvaluateVersion", "ModelEvaluationRequested", version_id, "dev",
            lambda s: s.EvaluateVersion(evaluate, timeout=CALL_TIMEOUT_S),
        )  # fmt: skip
        if not (asked and await self.evaluated(version_id)):
            return
        approved = await self.registry(
            "ApproveVersion", "ModelApproved", version_id, "carol",
            lambda s: s.ApproveVersion(ref, timeout=CALL_TIMEOUT_S),
        )  # fmt: skip
        if approved and await self.registry(
            "ReleaseVersion", "ModelReleased", version_id, "carol",
            lambda s: s.ReleaseVersion(release, timeout=CALL_TIMEOUT_S),
        ):  # fmt: skip
            await self.roll_out(version_id)

    async def registry(
        self,
        command: str,
        event_type: str,
        version_id: str,
        subject: str,
        rpc: Callable[[registry_pb2_grpc.RegistryServiceStub], Awaitable[Any]],
    ) -> bool:
        """A RegistryService command as `subject` (four eyes: "dev" trains, "carol" approves); acked?"""
        answer = await self.workload.call(
            self.workload.running.registry_target, command, lambda ch: rpc(_registry(ch)), subject
        )
        if answer is not None:
            self.workload.ledger.ack("registry-svc", command, event_type, [version_id])
        return answer is not None

    async def evaluated(self, version_id: str, timeout_s: float = 240.0) -> bool:
        """Whether the version's evaluation finished (it runs as a job on the trainer) in time."""
        ref = registry_pb2.ModelVersionRef(version_id=version_id)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            version = await self.workload.call(
                self.workload.running.registry_target,
                "GetVersion",
                lambda ch: _registry(ch).GetVersion(ref, timeout=5),
            )
            if version is not None and (
                version.evaluation.finished or version.status != registry_pb2.MODEL_STATUS_TESTING
            ):
                return bool(version.evaluation.finished)
            await asyncio.sleep(1.0)
        return False

    async def roll_out(self, version_id: str) -> None:
        """StartRollout of the released version to every edge server, retried while deploy-svc has not
        yet read the release from the registry's events (FAILED_PRECONDITION until then)."""
        request = deploy_pb2.StartRolloutRequest(
            version_id=version_id, server_ids=self.workload.edge_servers, health=LENIENT
        )
        rollout = await self.workload.call(
            self.workload.running.deploy_target,
            "StartRollout",
            lambda ch: deploy_pb2_grpc.DeployServiceStub(ch).StartRollout(request, timeout=CALL_TIMEOUT_S),
            also_retry=frozenset({grpc.StatusCode.FAILED_PRECONDITION}),
        )
        if rollout is not None:
            self.workload.ledger.ack("deploy-svc", "StartRollout", "RolloutStarted", [rollout.rollout_id])
            self.workload.ledger.rollout_ids.append(rollout.rollout_id)


def _registry(ch: grpc.aio.Channel) -> Any:
    return registry_pb2_grpc.RegistryServiceStub(ch)
