"""One assignment's install: download, verify, unpack, load, health gate, switch; each phase reported.

Nothing here touches the running model until the last step: a failure or a cancellation at any
point leaves the module's active version (on disk and in memory) as it was, and the agent keeps
serving it. A version already in the versions folder (a rollback to the previous one) is verified
again and used without downloading: the instant local rollback.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp
import grpc
from grpc import aio

from modelyard.v1 import deploy_pb2, deploy_pb2_grpc, registry_pb2, registry_pb2_grpc
from modelyard_artifacts.download import DownloadError, download_artifact
from modelyard_artifacts.integrity import ArtifactMismatch
from modelyard_artifacts.manifest import (
    ArtifactManifest,
    MalformedManifest,
    ManifestSignatureError,
    ManifestVerifier,
    SignedManifest,
)
from modelyard_edge.config import AgentConfig, bearer_metadata
from modelyard_edge.health import HealthVerdict
from modelyard_edge.messages import health_to_proto, limits_from_proto
from modelyard_edge.probing import ServedModel, health_gate, load_version
from modelyard_edge.versions import InstalledVersion, VersionRefused, VersionsHome
from modelyard_grpc.client import TokenSource

log = logging.getLogger(__name__)

DOWNLOADING = deploy_pb2.DEPLOYMENT_STATUS_DOWNLOADING
INSTALLING = deploy_pb2.DEPLOYMENT_STATUS_INSTALLING
COMPLETED = deploy_pb2.DEPLOYMENT_STATUS_COMPLETED
FAILED = deploy_pb2.DEPLOYMENT_STATUS_FAILED

PERCENT_STEP = 5  # a download reports when it moved this many points ...
REPORT_EVERY_S = 2.0  # ... or this long after the last report
_TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.ABORTED,
        # A call cut off on its way (a channel reset under load) says nothing about the report.
        grpc.StatusCode.CANCELLED,
    }
)
# answers to a progress report that mean the install is no longer wanted
_NOT_EXPECTED = frozenset(
    {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED}
)
_OVER = frozenset({FAILED, deploy_pb2.DEPLOYMENT_STATUS_CANCELLED})
_SHA256_IN_TEXT = re.compile(r"SHA-256 ([0-9a-f]{64})")


class DeploymentCancelled(Exception):
    """deploy-svc answered a progress report with cancelled: stop, keep the running model."""


class InstallFailed(Exception):
    """A failed install, as reported: the message, whether another attempt may succeed, the phase."""

    def __init__(
        self, message: str, *, retryable: bool, phase: str, health: HealthVerdict | None = None
    ) -> None:
        super().__init__(message)
        self.message, self.retryable, self.phase, self.health = message, retryable, phase, health


class PhaseReporter(Protocol):
    """Where the download step sends its progress (ProgressReporter: to deploy-svc)."""

    async def progress(self, status: int, phase: str, percent: int) -> None: ...


class ProgressReporter:
    """ReportProgress for one assignment. Progress reports are tried once (the next one follows);
    the final one (COMPLETED / FAILED) is retried with backoff until deploy-svc takes it.

    A report of the same status less than `gap_s` after the last one sent is held, and sent when the
    gap is over unless a newer one replaced it: a phase that lasts milliseconds (unpacking a small
    model) is not worth an event in deploy-svc's log for each of a thousand servers, and one that
    lasts longer is still shown. A change of status, and the outcome, are sent at once.
    """

    def __init__(
        self,
        stub: deploy_pb2_grpc.EdgeServiceStub,
        server_id: str,
        assignment: deploy_pb2.Assignment,
        token: TokenSource,
        timeout_s: float,
        retry_max_s: float = 30.0,
        gap_s: float = 0.0,
    ) -> None:
        self._stub, self._server_id, self._assignment, self._token = stub, server_id, assignment, token
        self._timeout_s, self._retry_max_s, self._gap_s = timeout_s, retry_max_s, gap_s
        self._sending = asyncio.Lock()  # one report at a time, in order
        self._last: tuple[int, float] | None = None  # (status, when) of the last report sent
        self._held: tuple[int, str, int] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._stopped: DeploymentCancelled | None = None  # what a held report's answer said

    async def progress(self, status: int, phase: str, percent: int) -> None:
        """Report a phase (or hold it, see above); DeploymentCancelled when deploy-svc says the
        deployment was cancelled or is over (failed: its deadline passed), or refuses progress for it."""
        if self._stopped is not None:
            raise self._stopped
        now = time.monotonic()
        if self._last is not None and self._last[0] == status and now - self._last[1] < self._gap_s:
            self._held = (status, phase, percent)
            if self._flusher is None or self._flusher.done():
                wait = self._last[1] + self._gap_s - now
                self._flusher = asyncio.create_task(self._send_held_after(wait))
            return
        self._held = None
        async with self._sending:
            await self._progress_now(status, phase, percent)

    def close(self) -> None:
        """Drop a held report (the install is over or aborted)."""
        self._held = None
        if self._flusher is not None:
            self._flusher.cancel()

    async def _send_held_after(self, wait_s: float) -> None:
        await asyncio.sleep(wait_s)
        async with self._sending:
            held, self._held = self._held, None
            if held is None:
                return
            try:
                await self._progress_now(*held)
            except DeploymentCancelled as stop:
                self._stopped = stop

    async def _progress_now(self, status: int, phase: str, percent: int) -> None:
        self._last = (status, time.monotonic())
        try:
            ack = await self._send(self._report(status, phase, percent))
        except aio.AioRpcError as error:
            if error.code() in _NOT_EXPECTED:
                raise DeploymentCancelled(
                    f"deploy-svc no longer takes progress for {self._what}: {_rpc_text(error)}"
                ) from None
            log.warning("%s: progress %s not reported: %s", self._what, phase, _rpc_text(error))
            return
        if ack.cancelled:
            raise DeploymentCancelled(f"{self._what} was cancelled (answer to progress {phase})")
        if ack.HasField("deployment") and ack.deployment.status in _OVER:
            raise DeploymentCancelled(
                f"{self._what} is {deploy_pb2.DeploymentStatus.Name(ack.deployment.status)} at deploy-svc "
                f"({ack.deployment.error_message or 'no reason given'})"
            )

    async def final(self, report: deploy_pb2.ProgressReport) -> None:
        """Report the outcome until deploy-svc takes it (transient errors are retried forever)."""
        self.close()
        async with self._sending:  # after a held report being sent, never before it
            await self._final(report)

    async def _final(self, report: deploy_pb2.ProgressReport) -> None:
        wait = 0.5
        while True:
            try:
                await self._send(report)
                return
            except aio.AioRpcError as error:
                if error.code() not in _TRANSIENT:
                    log.error("%s: deploy-svc refused the outcome: %s", self._what, _rpc_text(error))
                    return
                log.warning(
                    "%s: outcome not reported (%s); again in %.1f s", self._what, _rpc_text(error), wait
                )
            await asyncio.sleep(wait)
            wait = min(wait * 2, self._retry_max_s)

    def completed(self, health: HealthVerdict | None, phase: str = "completed") -> deploy_pb2.ProgressReport:
        report = self._report(COMPLETED, phase, 100)
        if health is not None:
            report.health.CopyFrom(health_to_proto(health))
        return report

    def failed(self, failure: InstallFailed) -> deploy_pb2.ProgressReport:
        report = self._report(FAILED, failure.phase, 0)
        report.error_message, report.retryable = failure.message[:2000], failure.retryable
        if failure.health is not None:
            report.health.CopyFrom(health_to_proto(failure.health))
        return report

    @property
    def _what(self) -> str:
        return f"server {self._server_id}, deployment {self._assignment.deployment_id}"

    def _report(self, status: int, phase: str, percent: int) -> deploy_pb2.ProgressReport:
        return deploy_pb2.ProgressReport(
            server_id=self._server_id,
            deployment_id=self._assignment.deployment_id,
            attempt=self._assignment.attempt,
            status=status,  # type: ignore[arg-type]
            phase=phase,
            progress_percent=percent,
        )

    async def _send(self, report: deploy_pb2.ProgressReport) -> deploy_pb2.ProgressAck:
        ack: deploy_pb2.ProgressAck = await self._stub.ReportProgress(
            report, timeout=self._timeout_s, metadata=bearer_metadata(self._token)
        )
        return ack


@dataclass
class _DownloadProgress:
    """Decides when a download's progress is worth a report: 5 points more than the last one, or
    any progress 2 s after it (a slow link still shows it moves)."""

    def __init__(self, size: int, reported_percent: int) -> None:
        self.size, self.reported_percent = size, reported_percent
        self.reported_at = time.monotonic()
        self.on_disk = 0
        self.due = asyncio.Event()

    @property
    def percent(self) -> int:
        return min(100, self.on_disk * 100 // self.size) if self.size else 100

    def update(self, on_disk: int, _total: int | None) -> None:
        self.on_disk = on_disk
        late = time.monotonic() - self.reported_at >= REPORT_EVERY_S
        if self.percent >= self.reported_percent + PERCENT_STEP or (
            late and self.percent > self.reported_percent
        ):
            self.due.set()

    def reported(self) -> int:
        self.due.clear()
        self.reported_percent, self.reported_at = self.percent, time.monotonic()
        return self.reported_percent


class Installer:
    """Carries out assignments for one agent: `served` is the agent's in-memory models by module,
    changed only by a successful switch."""

    def __init__(
        self,
        config: AgentConfig,
        home: VersionsHome,
        verifier: ManifestVerifier,
        edge: deploy_pb2_grpc.EdgeServiceStub,
        registry: registry_pb2_grpc.RegistryServiceStub,
        http: aiohttp.ClientSession,
        served: MutableMapping[str, ServedModel],
    ) -> None:
        self._config, self._home, self._verifier = config, home, verifier
        self._edge, self._registry, self._http, self._served = edge, registry, http, served

    async def install(self, assignment: deploy_pb2.Assignment) -> None:
        """Carry out one assignment and report its outcome (a cancellation reports nothing: deploy-svc
        already knows). Raises only CancelledError (the agent aborting it)."""
        reporter = ProgressReporter(
            self._edge,
            self._config.server_id,
            assignment,
            self._config.token,
            self._config.call_timeout_s,
            gap_s=self._config.report_gap_s,
        )
        what = (
            f"server {self._config.server_id}: deployment {assignment.deployment_id} (version "
            f"{assignment.semantic_version or assignment.version_id} of {assignment.ai_module})"
        )
        log.info("%s: attempt %d starts (%s)", what, assignment.attempt, assignment.kind or "deploy")
        try:
            outcome = await self._install(assignment, reporter)
        except DeploymentCancelled as stopped:
            reporter.close()
            log.info("%s: stopped, the running model stays: %s", what, stopped)
            return
        except InstallFailed as failure:
            log.warning("%s failed in phase %s: %s", what, failure.phase, failure.message)
            await reporter.final(reporter.failed(failure))
            return
        except asyncio.CancelledError:
            reporter.close()
            log.info("%s: aborted; the running model stays", what)
            raise
        except Exception as error:  # a fault of this host (disk full, permissions): say so, keep serving
            log.exception("%s: the install broke", what)
            broken = InstallFailed(
                f"the edge could not install it: {type(error).__name__}: {error}",
                retryable=True,
                phase="installing",
            )
            await reporter.final(reporter.failed(broken))
            return
        log.info("%s: completed", what)
        await reporter.final(outcome)

    async def _install(
        self, assignment: deploy_pb2.Assignment, reporter: ProgressReporter
    ) -> deploy_pb2.ProgressReport:
        version_id = assignment.version_id
        installed = await self._local_copy(assignment)
        if installed is not None:
            await reporter.progress(INSTALLING, "verifying", 100)
        else:
            installed = await self._download(assignment, reporter)
        running = self._served.get(assignment.ai_module)
        active = self._home.active_version(assignment.ai_module)
        if running is not None and running.version_id == version_id == active:
            return reporter.completed(None, "already_active")
        await reporter.progress(INSTALLING, "loading", 100)
        try:
            served = await self._load(installed)
            await reporter.progress(INSTALLING, "health_check", 100)
            verdict = await self._health_check(assignment, served)
        except InstallFailed:  # a version that cannot run here is not kept (unless active or previous)
            await asyncio.to_thread(self._home.remove_version, version_id)
            raise
        await reporter.progress(INSTALLING, "switching", 100)
        # once the switch starts it finishes, on disk and in memory alike, even if the install is
        # aborted meanwhile: the agent never serves one version while `active` names another
        commit = asyncio.ensure_future(self._switch(served))
        replaced = await asyncio.shield(commit)
        log.info(
            "server %s: module %s now runs version %s (previous: %s)",
            self._config.server_id,
            assignment.ai_module,
            version_id,
            replaced or "none",
        )
        return reporter.completed(verdict)

    async def _switch(self, served: ServedModel) -> str | None:
        replaced = await asyncio.to_thread(self._home.switch, served.ai_module, served.version_id)
        self._served[served.ai_module] = served
        return replaced

    async def _local_copy(self, assignment: deploy_pb2.Assignment) -> InstalledVersion | None:
        """The version from the versions folder, verified again; None when absent or damaged (then it
        is downloaded again)."""
        if not self._home.has_version(assignment.version_id):
            return None
        try:
            installed = await asyncio.to_thread(self._home.verify, assignment.version_id, self._verifier)
            _check_names(installed.manifest, assignment)
        except (VersionRefused, InstallFailed) as refused:
            log.warning("server %s: %s; downloading it again", self._config.server_id, refused)
            await asyncio.to_thread(self._home.remove_version, assignment.version_id)
            return None
        return installed

    async def _download(
        self, assignment: deploy_pb2.Assignment, reporter: ProgressReporter
    ) -> InstalledVersion:
        answer = await self._download_url(assignment)
        signed_json, manifest = self._checked_manifest(answer, assignment)
        sha256, size = assignment.artifact_sha256, assignment.artifact_size_bytes
        part = self._home.part_file(sha256)
        on_disk = part.stat().st_size if part.exists() else 0
        first = min(100, on_disk * 100 // size) if size and on_disk else 0
        if on_disk:
            log.info(
                "server %s: resuming the download of version %s at %d%% (%s bytes on disk)",
                self._config.server_id,
                assignment.version_id,
                first,
                f"{on_disk:,}",
            )
        await reporter.progress(DOWNLOADING, "resuming" if on_disk else "downloading", first)
        target = await self.download_step(answer.url, sha256, size, reporter, first)
        await reporter.progress(INSTALLING, "verifying", 100)
        # download_artifact checked the bytes against the SHA-256 and size the signed manifest names
        await reporter.progress(INSTALLING, "unpacking", 100)
        folder = await asyncio.to_thread(self._home.unpack, assignment.version_id, target, signed_json)
        return InstalledVersion(folder, manifest)

    async def _download_url(self, assignment: deploy_pb2.Assignment) -> registry_pb2.DownloadUrl:
        request = registry_pb2.DownloadUrlRequest(
            version_id=assignment.version_id, audience=self._config.server_id
        )
        try:
            answer: registry_pb2.DownloadUrl = await self._registry.GetDownloadUrl(
                request, timeout=self._config.call_timeout_s, metadata=bearer_metadata(self._config.token)
            )
        except aio.AioRpcError as error:
            raise InstallFailed(
                f"registry-svc gave no download URL: {_rpc_text(error)}",
                retryable=error.code() in _TRANSIENT or error.code() == grpc.StatusCode.NOT_FOUND,
                phase="downloading",
            ) from None
        offered = (answer.artifact_sha256, answer.artifact_size_bytes)
        expected = (assignment.artifact_sha256, assignment.artifact_size_bytes)
        if offered != expected:
            raise InstallFailed(
                f"registry-svc offers SHA-256 {offered[0]} ({offered[1]:,} bytes) for version "
                f"{assignment.version_id}, not the assignment's {expected[0]} ({expected[1]:,} bytes)",
                retryable=False,
                phase="downloading",
            )
        return answer

    def _checked_manifest(
        self, answer: registry_pb2.DownloadUrl, assignment: deploy_pb2.Assignment
    ) -> tuple[bytes, ArtifactManifest]:
        """The registry's signed manifest, verified under a pinned key and naming exactly this version,
        SHA-256 and size (checked before a byte is downloaded); InstallFailed, not retryable, if not."""
        if not answer.HasField("signed_manifest_json"):
            raise InstallFailed(
                f"registry-svc sent no signed manifest for version {assignment.version_id}: it is not "
                "approved, and an edge installs only what the registry signed",
                retryable=False,
                phase="verifying",
            )
        signed_json = answer.signed_manifest_json.encode()
        try:
            manifest = self._verifier.verify(SignedManifest.from_json(signed_json))
        except (MalformedManifest, ManifestSignatureError) as error:
            raise InstallFailed(
                f"the registry's manifest is refused: {error}", retryable=False, phase="verifying"
            ) from None
        _check_names(manifest, assignment)
        return signed_json, manifest

    async def download_step(
        self, url: str, sha256: str, size: int, reporter: PhaseReporter, first_percent: int
    ) -> Path:
        """Download `url` into the home's downloads folder, resuming a `.part`, checked against
        `sha256` and `size`; reports DOWNLOADING with the percent every 5 points, starting after
        `first_percent`. The file's path, or InstallFailed (retryable). Public so that the download
        benchmark times exactly this step."""
        state = _DownloadProgress(size, first_percent)
        download = asyncio.create_task(
            download_artifact(
                url,
                self._home.download_target(sha256),
                expected_sha256=sha256,
                expected_size=size,
                headers={"Authorization": bearer_metadata(self._config.token)[0][1]},
                progress=state.update,
                stall_timeout_s=self._config.download_stall_timeout_s,
                session=self._http,
                rate_limit_bytes_per_s=self._config.max_download_bytes_per_s,
            )
        )
        try:
            while not download.done():
                due = asyncio.create_task(state.due.wait())
                await asyncio.wait({download, due}, return_when=asyncio.FIRST_COMPLETED)
                due.cancel()
                if state.due.is_set() and not download.done():
                    await reporter.progress(DOWNLOADING, "downloading", state.reported())
            return download.result()
        except ArtifactMismatch as mismatch:
            raise InstallFailed(_mismatch_text(mismatch), retryable=True, phase="downloading") from None
        except DownloadError as error:
            raise InstallFailed(str(error), retryable=True, phase="downloading") from None
        finally:
            if not download.done():
                download.cancel()
                await asyncio.gather(download, return_exceptions=True)

    async def _load(self, installed: InstalledVersion) -> ServedModel:
        try:
            return await asyncio.to_thread(load_version, installed, self._config.device)
        except (ValueError, RuntimeError, OSError) as error:  # ArtifactError is a ValueError
            raise InstallFailed(
                f"version {installed.manifest.version_id} does not load: {error}",
                retryable=False,
                phase="loading",
            ) from None

    async def _health_check(self, assignment: deploy_pb2.Assignment, served: ServedModel) -> HealthVerdict:
        old = None
        active = self._home.active_version(assignment.ai_module)
        # a rollback goes back to a version this fleet already ran: it is not held to the limits
        if assignment.kind != "rollback" and active is not None and active != assignment.version_id:
            try:
                old = await asyncio.to_thread(self._home.stored, active)
            except (OSError, ValueError) as error:
                log.warning(
                    "server %s: the running version %s is unreadable on disk (%s); judging "
                    "version %s on its own",
                    self._config.server_id,
                    active,
                    error,
                    assignment.version_id,
                )
        limits = limits_from_proto(assignment.health)
        try:
            verdict = await asyncio.to_thread(
                health_gate, served, old, self._config.probe_inputs, limits, self._config.device
            )
        except (ValueError, RuntimeError, OSError) as error:
            raise InstallFailed(
                f"version {assignment.version_id} does not run on the probe inputs: {error}",
                retryable=False,
                phase="health_check",
            ) from None
        if not verdict.passed:
            raise InstallFailed(
                "health gate: " + "; ".join(verdict.reasons),
                retryable=False,
                phase="health_check",
                health=verdict,
            )
        return verdict


def _check_names(manifest: ArtifactManifest, assignment: deploy_pb2.Assignment) -> None:
    """The signed manifest must vouch for exactly the assignment's version, module, SHA-256 and size."""
    signed = (manifest.version_id, manifest.artifact_sha256, manifest.artifact_size_bytes)
    expected = (assignment.version_id, assignment.artifact_sha256, assignment.artifact_size_bytes)
    if signed != expected:
        raise InstallFailed(
            f"the signed manifest vouches for version {signed[0]}, SHA-256 {signed[1]} "
            f"({signed[2]:,} bytes), not the assignment's {expected[0]}, {expected[1]} "
            f"({expected[2]:,} bytes)",
            retryable=False,
            phase="verifying",
        )
    if manifest.ai_module != assignment.ai_module:
        raise InstallFailed(
            f"the signed manifest puts version {manifest.version_id} in module {manifest.ai_module}, not "
            f"the assignment's {assignment.ai_module}",
            retryable=False,
            phase="verifying",
        )


def _mismatch_text(mismatch: ArtifactMismatch) -> str:
    actual = _SHA256_IN_TEXT.search(mismatch.actual)
    expected = _SHA256_IN_TEXT.search(mismatch.expected)
    if actual is not None and expected is not None:
        return f"artifact SHA-256 is {actual.group(1)}, expected {expected.group(1)}"
    return f"artifact is {mismatch.actual}, expected {mismatch.expected}"


def _rpc_text(error: aio.AioRpcError) -> str:
    return f"{error.code().name}: {error.details()}"
