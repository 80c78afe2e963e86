"""In-memory job-svc and registry-svc behind the console's gateway interface, and tokens for the tests."""

# ruff: noqa: N802  (the fakes keep the RPCs' names)

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from modelyard.v1 import audit_pb2, datasets_pb2, deploy_pb2, events_pb2, jobs_pb2, registry_pb2
from modelyard_cli.connection import DatasetSvc, DeploySvc, JobSvc, RegistrySvc
from modelyard_console.gateway import Refusal
from modelyard_grpc import TokenIssuer, mint_token

ISSUER = TokenIssuer.generate()


def token_for(
    subject: str = "ada", org_id: str | None = "acme", roles: tuple[str, ...] = ("super_admin",)
) -> str:
    """A real Modelyard token (the console reads its claims; the fake services accept anything)."""
    return mint_token(ISSUER, subject, org_id, list(roles), 600)


def log_lines(count: int, message: str = "epoch {n} done", start: int = 1) -> list[jobs_pb2.JobLogLine]:
    """`count` INFO lines of attempt 1, cursors from `start`; `{n}` in `message` is the line's number."""
    return [
        jobs_pb2.JobLogLine(
            cursor=n, attempt=1, level="INFO", logger="trainer", message=message.format(n=n), trainer_id="t-1"
        )
        for n in range(start, start + count)
    ]


def a_job(job_id: str = "j-1", state: int = jobs_pb2.JOB_STATE_QUEUED, **fields: Any) -> jobs_pb2.Job:
    """A job as GetJob returns it."""
    fields.setdefault("name", f"digits {job_id}")
    return jobs_pb2.Job(
        job_id=job_id, org_id="acme", ai_module="digit-reader", state=state,
        epochs_total=3, priority=50, **fields,
    )  # fmt: skip


class FakeJobService:
    """JobService and QueryService over a dict of jobs; `refuse[rpc]` makes that RPC refuse."""

    def __init__(self) -> None:
        self.jobs: dict[str, jobs_pb2.Job] = {}
        self.calls: list[tuple[str, Any]] = []
        self.refuse: dict[str, Refusal] = {}
        self.tokens: list[str] = []
        self.epochs: dict[str, list[jobs_pb2.EpochMetrics]] = {}
        self.log_lines: dict[str, list[jobs_pb2.JobLogLine]] = {}
        self.events: dict[str, list[events_pb2.EventEnvelope]] = {}

    def _called(self, rpc: str, request: Any) -> None:
        self.calls.append((rpc, request))
        if rpc in self.refuse:
            raise self.refuse[rpc]

    async def GetJob(self, ref: jobs_pb2.JobRef) -> jobs_pb2.Job:
        self._called("GetJob", ref)
        if ref.job_id not in self.jobs:
            raise Refusal("NOT_FOUND", f"no job {ref.job_id}")
        return self.jobs[ref.job_id]

    async def ListJobs(self, request: jobs_pb2.ListJobsRequest) -> jobs_pb2.ListJobsResponse:
        self._called("ListJobs", request)
        wanted = set(request.states)
        return jobs_pb2.ListJobsResponse(
            jobs=[j for j in self.jobs.values() if not wanted or j.state in wanted]
        )

    async def GetQueue(self, request: jobs_pb2.GetQueueRequest) -> jobs_pb2.GetQueueResponse:
        self._called("GetQueue", request)
        queued = [j for j in self.jobs.values() if j.state == jobs_pb2.JOB_STATE_QUEUED]
        return jobs_pb2.GetQueueResponse(
            entries=[jobs_pb2.QueueEntry(position=n, job=j) for n, j in enumerate(queued, 1)]
        )

    async def ListTrainers(self, request: jobs_pb2.ListTrainersRequest) -> jobs_pb2.ListTrainersResponse:
        self._called("ListTrainers", request)
        trainer = jobs_pb2.Trainer(trainer_id="t-1", slots_total=2, slots_free=1, alive=True)
        return jobs_pb2.ListTrainersResponse(trainers=[trainer])

    async def GetMetricsHistory(self, ref: jobs_pb2.JobRef) -> jobs_pb2.MetricsHistoryResponse:
        self._called("GetMetricsHistory", ref)
        return jobs_pb2.MetricsHistoryResponse(job_id=ref.job_id, epochs=self.epochs.get(ref.job_id, []))

    async def GetJobEvents(self, ref: jobs_pb2.JobRef) -> jobs_pb2.JobEventsResponse:
        self._called("GetJobEvents", ref)
        return jobs_pb2.JobEventsResponse(events=self.events.get(ref.job_id, []))

    def _log_page(self, request: jobs_pb2.JobLogsRequest) -> jobs_pb2.JobLogsResponse:
        after = [
            line for line in self.log_lines.get(request.job_id, []) if line.cursor > request.after_cursor
        ]
        page = after[: request.page_size or 200]
        next_cursor = page[-1].cursor if page else request.after_cursor
        return jobs_pb2.JobLogsResponse(lines=page, next_cursor=next_cursor, more=len(after) > len(page))

    async def GetJobLogs(self, request: jobs_pb2.JobLogsRequest) -> jobs_pb2.JobLogsResponse:
        self._called("GetJobLogs", request)
        return self._log_page(request)

    async def FollowJobLogs(
        self, request: jobs_pb2.JobLogsRequest
    ) -> AsyncIterator[jobs_pb2.JobLogsResponse]:
        """The lines there now, a page at a time, then nothing until the caller stops."""
        self._called("FollowJobLogs", request)
        cursor = request.after_cursor
        while True:
            page = self._log_page(jobs_pb2.JobLogsRequest(job_id=request.job_id, after_cursor=cursor))
            if not page.lines:
                break
            yield page
            cursor = page.next_cursor
        await asyncio.Event().wait()

    async def CreateJob(self, request: jobs_pb2.CreateJobRequest) -> jobs_pb2.Job:
        self._called("CreateJob", request)
        job = a_job(f"j-{len(self.jobs) + 1}", name=request.name)
        self.jobs[job.job_id] = job
        return job

    async def EstimateJob(self, request: jobs_pb2.CreateJobRequest) -> jobs_pb2.JobEstimate:
        self._called("EstimateJob", request)
        device = jobs_pb2.DeviceEstimate(device="cpu", runs=2, samples_per_s=900.0, duration_s=125.0)
        return jobs_pb2.JobEstimate(epochs=3, devices=[device], explanation="from 2 past runs on cpu")

    async def _command(self, rpc: str, command: jobs_pb2.JobCommand, state: int) -> jobs_pb2.Job:
        self._called(rpc, command)
        job = self.jobs[command.job_id]
        job.state = state
        return job

    async def CancelJob(self, command: jobs_pb2.JobCommand) -> jobs_pb2.Job:
        return await self._command("CancelJob", command, jobs_pb2.JOB_STATE_CANCELLED)

    async def PauseJob(self, command: jobs_pb2.JobCommand) -> jobs_pb2.Job:
        return await self._command("PauseJob", command, jobs_pb2.JOB_STATE_PAUSED)

    async def ResumeJob(self, command: jobs_pb2.JobCommand) -> jobs_pb2.Job:
        return await self._command("ResumeJob", command, jobs_pb2.JOB_STATE_QUEUED)

    async def WatchJob(self, request: jobs_pb2.WatchJobRequest) -> AsyncIterator[jobs_pb2.JobUpdate]:
        """The job as it is now, then nothing until the caller stops (a job that does not change)."""
        self._called("WatchJob", request)
        yield jobs_pb2.JobUpdate(job=self.jobs[request.job_id])
        await asyncio.Event().wait()

    async def SetPriority(self, request: jobs_pb2.SetPriorityRequest) -> jobs_pb2.Job:
        self._called("SetPriority", request)
        job = self.jobs[request.job_id]
        job.priority = request.priority
        return job


class FakeRegistryService:
    """RegistryService over a dict of versions; `refuse[rpc]` makes that RPC refuse."""

    def __init__(self) -> None:
        self.versions: dict[str, registry_pb2.ModelVersion] = {}
        self.calls: list[tuple[str, Any]] = []
        self.refuse: dict[str, Refusal] = {}

    async def GetVersion(self, ref: registry_pb2.ModelVersionRef) -> registry_pb2.ModelVersion:
        return self.versions[ref.version_id]

    async def ListVersions(
        self, request: registry_pb2.ListVersionsRequest
    ) -> registry_pb2.ListVersionsResponse:
        return registry_pb2.ListVersionsResponse(versions=list(self.versions.values()))

    async def ApproveVersion(self, command: registry_pb2.VersionCommand) -> registry_pb2.ModelVersion:
        self.calls.append(("ApproveVersion", command))
        if "ApproveVersion" in self.refuse:
            raise self.refuse["ApproveVersion"]
        version = self.versions[command.version_id]
        version.status = registry_pb2.MODEL_STATUS_APPROVED
        return version


class FakeDeployService:
    """DeployService's fleet reads over lists of servers and rollouts."""

    def __init__(self) -> None:
        self.servers: list[deploy_pb2.EdgeServer] = []
        self.rollouts: list[deploy_pb2.Rollout] = []

    async def ListEdgeServers(
        self, request: deploy_pb2.ListEdgeServersRequest
    ) -> deploy_pb2.ListEdgeServersResponse:
        return deploy_pb2.ListEdgeServersResponse(servers=self.servers)

    async def ListRollouts(self, request: deploy_pb2.ListRolloutsRequest) -> deploy_pb2.ListRolloutsResponse:
        return deploy_pb2.ListRolloutsResponse(rollouts=self.rollouts)


class FakeDatasetService:
    """DatasetService's reads over one dataset, its readiness and its published versions."""

    def __init__(self) -> None:
        self.datasets: dict[str, datasets_pb2.Dataset] = {}
        self.readiness = datasets_pb2.ReadinessReport()
        self.versions: dict[int, datasets_pb2.DatasetVersion] = {}

    async def ListDatasets(
        self, request: datasets_pb2.ListDatasetsRequest
    ) -> datasets_pb2.ListDatasetsResponse:
        return datasets_pb2.ListDatasetsResponse(datasets=list(self.datasets.values()))

    async def GetDataset(self, ref: datasets_pb2.DatasetRef) -> datasets_pb2.Dataset:
        return self.datasets[ref.dataset_id]

    async def GetReadiness(self, request: datasets_pb2.ReadinessRequest) -> datasets_pb2.ReadinessReport:
        return self.readiness

    async def GetVersion(self, ref: datasets_pb2.VersionRef) -> datasets_pb2.DatasetVersion:
        return self.versions[ref.version]


class FakeAuditService:
    """AuditService over lists of events and one lineage page; an org_admin token asking for another
    organization is refused as job-svc refuses it; `refuse[rpc]` makes that RPC refuse."""

    def __init__(self) -> None:
        self.events: list[audit_pb2.AuditEvent] = []
        self.lineage = audit_pb2.GetLineageResponse()
        self.calls: list[tuple[str, Any]] = []
        self.refuse: dict[str, Refusal] = {}
        self.org_admin_of = ""  # the organization of the caller when it is an org_admin

    def _called(self, rpc: str, request: Any, org_id: str) -> None:
        self.calls.append((rpc, request))
        if rpc in self.refuse:
            raise self.refuse[rpc]
        if self.org_admin_of and org_id not in ("", self.org_admin_of):
            raise Refusal("PERMISSION_DENIED", f"an org_admin reads only organization {self.org_admin_of}")

    async def SearchAudit(self, request: audit_pb2.SearchAuditRequest) -> audit_pb2.SearchAuditResponse:
        self._called("SearchAudit", request, request.org_id)
        found = [e for e in self.events if not request.actor or e.actor_subject == request.actor]
        return audit_pb2.SearchAuditResponse(events=found)

    async def FollowCorrelation(
        self, request: audit_pb2.FollowCorrelationRequest
    ) -> audit_pb2.SearchAuditResponse:
        self._called("FollowCorrelation", request, request.org_id)
        found = [e for e in self.events if e.correlation_id == request.correlation_id]
        return audit_pb2.SearchAuditResponse(events=found)

    async def GetLineage(self, request: audit_pb2.GetLineageRequest) -> audit_pb2.GetLineageResponse:
        self._called("GetLineage", request, request.org_id)
        return self.lineage


class FakeGateway:
    """The console's gateway with job-svc replaced by `service`; records the tokens calls carry."""

    def __init__(self, service: FakeJobService, registry: FakeRegistryService | None = None) -> None:
        self.service = service
        self.registry_service = registry or FakeRegistryService()
        self.deploy_service = FakeDeployService()
        self.dataset_service = FakeDatasetService()
        self.audit_service = FakeAuditService()

    @asynccontextmanager
    async def jobs(self, token: str) -> AsyncIterator[JobSvc]:
        self.service.tokens.append(token)
        yield JobSvc(jobs=self.service, queries=self.service)

    @asynccontextmanager
    async def registry(self, token: str) -> AsyncIterator[RegistrySvc]:
        yield RegistrySvc(registry=self.registry_service)

    @asynccontextmanager
    async def deploy(self, token: str) -> AsyncIterator[DeploySvc]:
        yield DeploySvc(deploy=self.deploy_service)

    @asynccontextmanager
    async def audit(self, token: str) -> AsyncIterator[FakeAuditService]:
        yield self.audit_service

    @asynccontextmanager
    async def datasets(self, token: str) -> AsyncIterator[DatasetSvc]:
        yield DatasetSvc(datasets=self.dataset_service)
