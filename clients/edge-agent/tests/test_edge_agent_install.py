"""The agent against in-process fakes of deploy-svc's EdgeService and registry-svc (real gRPC servers,
the registry's real download endpoint): phases reported, failures that keep the running model,
resume after an interruption, cancellation, reconnects, the local rollback."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from edge_support import MODULE, OTHER_KEY, Cloud, Version, agent_config, cloud, model_bytes, version
from grpc import aio

from modelyard.v1 import deploy_pb2
from modelyard_edge.agent import EdgeAgent
from modelyard_edge.installer import ProgressReporter
from modelyard_edge.versions import VersionsHome

COMPLETED = deploy_pb2.DEPLOYMENT_STATUS_COMPLETED
FAILED = deploy_pb2.DEPLOYMENT_STATUS_FAILED
DOWNLOADING = deploy_pb2.DEPLOYMENT_STATUS_DOWNLOADING
# Timings on a shared test machine are noisy: tests of anything but the gate do not judge them.
INSTALLING_PHASES = ["verifying", "unpacking", "loading", "health_check", "switching"]


@asynccontextmanager
async def running(fakes: Cloud, home: Path, **overrides: Any) -> AsyncIterator[EdgeAgent]:
    agent = EdgeAgent(agent_config(home, fakes.deploy_port, fakes.registry_port, **overrides))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.wait_for(agent.registered.wait(), 60)
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


def serving(agent: EdgeAgent) -> dict[str, str]:
    return {module: model.version_id for module, model in agent.running().items()}


async def deploy(
    fakes: Cloud, registered: Version, deployment_id: str, **fields: Any
) -> deploy_pb2.ProgressReport:
    fakes.edge.assignments.put_nowait(registered.assignment(deployment_id, **fields))
    return await fakes.edge.outcome(deployment_id)


async def test_phases_shorter_than_the_report_gap_are_held_and_a_status_change_is_not(
    tmp_path: Path,
) -> None:
    v1 = version("v1", model_bytes(1))
    async with cloud(tmp_path) as fakes, running(fakes, tmp_path / "home", report_gap_s=30.0):
        fakes.registry.add(v1)
        outcome = await deploy(fakes, v1, "d1")
        assert outcome.status == COMPLETED, outcome.error_message
        # downloading, then installing (a new status: sent at once), then the outcome; the phases
        # in between (unpacking, loading, ...) came within the gap and were dropped for the outcome
        reports = [(r.status, r.phase) for r in fakes.edge.reports_of("d1")]
        assert reports == [
            (DOWNLOADING, "downloading"),
            (deploy_pb2.DEPLOYMENT_STATUS_INSTALLING, "verifying"),
            (COMPLETED, "completed"),
        ]


async def test_a_held_phase_is_sent_once_the_gap_is_over(tmp_path: Path) -> None:
    reports: list[tuple[int, str]] = []
    second = asyncio.Event()

    class _Stub:
        async def ReportProgress(  # noqa: N802  (the gRPC stub's name)
            self, report: deploy_pb2.ProgressReport, **_: Any
        ) -> deploy_pb2.ProgressAck:
            reports.append((report.status, report.phase))
            if len(reports) == 2:
                second.set()
            return deploy_pb2.ProgressAck()

    installing = deploy_pb2.DEPLOYMENT_STATUS_INSTALLING
    assignment = deploy_pb2.Assignment(deployment_id="d1", attempt=1)
    reporter = ProgressReporter(_Stub(), "edge-1", assignment, "t", 5.0, gap_s=0.5)  # type: ignore[arg-type]
    await reporter.progress(installing, "verifying", 100)
    await reporter.progress(installing, "unpacking", 100)  # held, then replaced
    await reporter.progress(installing, "loading", 100)  # held: a long phase
    assert reports == [(installing, "verifying")]
    await asyncio.wait_for(second.wait(), 5)
    assert reports == [(installing, "verifying"), (installing, "loading")]
    await reporter.progress(installing, "health_check", 100)  # within 0.5 s of "loading": held
    await reporter.final(deploy_pb2.ProgressReport(status=COMPLETED, phase="completed"))
    assert reports[-1] == (COMPLETED, "completed")
    await asyncio.sleep(0.7)  # a window past the gap: the held one is dropped, never sent after the outcome
    assert reports == [(installing, "verifying"), (installing, "loading"), (COMPLETED, "completed")]


async def test_an_assignment_is_installed_phase_by_phase_and_served(tmp_path: Path) -> None:
    v1 = version("v1", model_bytes(1))
    async with cloud(tmp_path) as fakes, running(fakes, tmp_path / "home") as agent:
        fakes.registry.add(v1)
        outcome = await deploy(fakes, v1, "d1")
        assert outcome.status == COMPLETED, outcome.error_message
        assert outcome.health.passed
        assert outcome.health.new.version_id == "v1"
        assert not outcome.health.HasField("old")
        reports = fakes.edge.reports_of("d1")
        assert reports[0].status == DOWNLOADING
        assert reports[0].phase == "downloading"
        installing = [r.phase for r in reports if r.status == deploy_pb2.DEPLOYMENT_STATUS_INSTALLING]
        assert installing == INSTALLING_PHASES
        assert all(r.server_id == "edge-1" and r.attempt == 1 for r in reports)
        assert fakes.registry.requests[0].audience == "edge-1"
        assert fakes.registry.tokens == ["Bearer edge-token"]
        assert fakes.edge.tokens == {"edge-1": {"Bearer edge-token"}}
        assert serving(agent) == {MODULE: "v1"}
        assert os.readlink(tmp_path / "home" / "modules" / MODULE / "active") == "../../versions/v1"
        assert await agent.predict(MODULE, [[10.0, 5.0, 3.0]]) in (["cat"], ["dog"], ["horse"])
        registration = fakes.edge.registrations[0]
        assert (registration.server_id, registration.platform, registration.environment) == (
            "edge-1",
            "linux/amd64",
            "production",
        )
        await fakes.edge.wait_for(lambda: any(hb.running for hb in fakes.edge.heartbeats), 60)
        beat = next(hb for hb in fakes.edge.heartbeats if hb.running)
        assert [(m.ai_module, m.version_id) for m in beat.running] == [(MODULE, "v1")]
        assert beat.free_disk_bytes > 0


async def test_a_second_version_is_gated_against_the_first_and_keeps_it_as_previous(tmp_path: Path) -> None:
    v1, v2 = version("v1", model_bytes(1)), version("v2", model_bytes(2), semantic_version="1.1.0")
    async with cloud(tmp_path) as fakes, running(fakes, tmp_path / "home") as agent:
        fakes.registry.add(v1)
        fakes.registry.add(v2)
        assert (await deploy(fakes, v1, "d1")).status == COMPLETED
        outcome = await deploy(fakes, v2, "d2")
        assert outcome.status == COMPLETED, outcome.error_message
        assert outcome.health.old.version_id == "v1"
        assert outcome.health.compared_classes == 3
        assert serving(agent) == {MODULE: "v2"}
        home = VersionsHome(tmp_path / "home")
        assert (home.active_version(MODULE), home.previous_version(MODULE)) == ("v2", "v1")
        # the instant local rollback: v1 is on disk, verified again, not downloaded
        downloads = len(fakes.registry.requests)
        outcome = await deploy(fakes, v1, "d3", kind="rollback")
        assert outcome.status == COMPLETED, outcome.error_message
        assert len(fakes.registry.requests) == downloads
        assert fakes.edge.phases_of("d3")[0] == "verifying"
        assert serving(agent) == {MODULE: "v1"}
        assert (home.active_version(MODULE), home.previous_version(MODULE)) == ("v1", "v2")


async def test_a_health_regression_fails_with_the_figures_and_keeps_the_running_model(tmp_path: Path) -> None:
    v1, v2 = version("v1", model_bytes(1, always=0)), version("v2", model_bytes(2, always=1))
    async with cloud(tmp_path) as fakes, running(fakes, tmp_path / "home") as agent:
        fakes.registry.add(v1)
        fakes.registry.add(v2)
        assert (await deploy(fakes, v1, "d1")).status == COMPLETED
        limits = deploy_pb2.HealthLimits(
            min_agreement=0.8, load_time_slack_ms=60_000, latency_slack_ms=10_000
        )
        outcome = await deploy(fakes, v2, "d2", health=limits)
        assert outcome.status == FAILED
        assert not outcome.retryable
        assert outcome.phase == "health_check"
        assert outcome.error_message == (
            "health gate: agreement with version v1 is 0.0% on 3 shared classes, below the minimum of 80.0%"
        )
        assert not outcome.health.passed
        assert outcome.health.agreement == 0.0
        assert outcome.health.probes == 32
        assert outcome.health.old.load_time_ms > 0
        assert serving(agent) == {MODULE: "v1"}
        assert VersionsHome(tmp_path / "home").active_version(MODULE) == "v1"
        assert not (tmp_path / "home" / "versions" / "v2").exists()  # a version that failed is not kept


async def test_the_operators_probe_inputs_are_the_ones_run(tmp_path: Path) -> None:
    probes = tmp_path / "probes.npy"
    np.save(
        probes,
        np.asarray([[10.0, 5.0, 3.0], [11.0, 6.0, 2.5], [9.0, 4.0, 3.5], [12.0, 5.0, 3.0], [8.0, 5.5, 3.1]]),
    )
    v1, v2 = version("v1", model_bytes(1)), version("v2", model_bytes(2))
    async with cloud(tmp_path) as fakes, running(fakes, tmp_path / "home", probe_inputs=probes):
        fakes.registry.add(v1)
        fakes.registry.add(v2)
        assert (await deploy(fakes, v1, "d1")).status == COMPLETED
        outcome = await deploy(fakes, v2, "d2")
        assert outcome.status == COMPLETED, outcome.error_message
        assert outcome.health.probes == 5


class TestVerificationFailures:
    async def test_a_bad_hash_fails_retryably_and_removes_the_part(self, tmp_path: Path) -> None:
        v1, v2 = version("v1", model_bytes(1)), version("v2", model_bytes(2))
        async with cloud(tmp_path) as fakes, running(fakes, tmp_path / "home") as agent:
            fakes.registry.add(v1)
            tampered = bytearray(v2.data)
            tampered[-100] ^= 0xFF
            fakes.registry.add(v2, serve_bytes=bytes(tampered))
            assert (await deploy(fakes, v1, "d1")).status == COMPLETED
            outcome = await deploy(fakes, v2, "d2")
            assert outcome.status == FAILED
            assert outcome.retryable
            assert outcome.error_message.startswith("artifact SHA-256 is ")
            assert outcome.error_message.endswith(f", expected {v2.sha256}")
            assert list((tmp_path / "home" / "downloads").iterdir()) == []
            assert serving(agent) == {MODULE: "v1"}

    async def test_a_manifest_signed_by_another_key_is_refused_before_downloading(
        self, tmp_path: Path
    ) -> None:
        v1, v2 = version("v1", model_bytes(1)), version("v2", model_bytes(2), key=OTHER_KEY)
        async with cloud(tmp_path) as fakes, running(fakes, tmp_path / "home") as agent:
            fakes.registry.add(v1)
            fakes.registry.add(v2)
            assert (await deploy(fakes, v1, "d1")).status == COMPLETED
            served = len(fakes.ranges)
            outcome = await deploy(fakes, v2, "d2")
            assert outcome.status == FAILED
            assert not outcome.retryable
            assert outcome.phase == "verifying"
            assert "not pinned here" in outcome.error_message
            assert len(fakes.ranges) == served  # not a byte fetched
            assert serving(agent) == {MODULE: "v1"}

    async def test_a_manifest_for_another_version_is_refused(self, tmp_path: Path) -> None:
        v1, v2 = version("v1", model_bytes(1)), version("v2", model_bytes(2), manifest_version_id="v7")
        async with cloud(tmp_path) as fakes, running(fakes, tmp_path / "home") as agent:
            fakes.registry.add(v1)
            fakes.registry.add(v2)
            assert (await deploy(fakes, v1, "d1")).status == COMPLETED
            outcome = await deploy(fakes, v2, "d2")
            assert outcome.status == FAILED
            assert not outcome.retryable
            assert "vouches for version v7" in outcome.error_message
            assert serving(agent) == {MODULE: "v1"}

    async def test_a_manifest_of_another_module_is_refused(self, tmp_path: Path) -> None:
        v1 = version("v1", model_bytes(1))
        async with cloud(tmp_path) as fakes, running(fakes, tmp_path / "home") as agent:
            fakes.registry.add(v1)
            outcome = await deploy(fakes, v1, "d1", ai_module="counter")
            assert outcome.status == FAILED
            assert not outcome.retryable
            assert outcome.error_message.endswith(f"in module {MODULE}, not the assignment's counter")
            assert agent.running() == {}


async def test_a_download_left_on_disk_is_resumed_with_range(tmp_path: Path) -> None:
    v1 = version("v1", model_bytes(1, hidden=256))
    have = len(v1.data) // 2
    downloads = tmp_path / "home" / "downloads"
    downloads.mkdir(parents=True)
    (downloads / f"{v1.sha256}.part").write_bytes(v1.data[:have])
    async with cloud(tmp_path) as fakes, running(fakes, tmp_path / "home") as agent:
        fakes.registry.add(v1)
        outcome = await deploy(fakes, v1, "d1")
        assert outcome.status == COMPLETED, outcome.error_message
        first = fakes.edge.reports_of("d1")[0]
        assert (first.status, first.phase, first.progress_percent) == (
            DOWNLOADING,
            "resuming",
            have * 100 // len(v1.data),
        )
        assert fakes.ranges == [f"bytes={have}-"]
        assert serving(agent) == {MODULE: "v1"}


async def test_an_agent_stopped_mid_download_resumes_after_restart(tmp_path: Path) -> None:
    v1 = version("v1", model_bytes(1, hidden=2048))
    part = tmp_path / "home" / "downloads" / f"{v1.sha256}.part"
    async with cloud(tmp_path) as fakes:
        fakes.registry.add(v1)
        slow = len(v1.data) / 4
        async with running(fakes, tmp_path / "home", max_download_bytes_per_s=slow):
            fakes.edge.assignments.put_nowait(v1.assignment("d1"))
            await fakes.edge.wait_for(
                lambda: any(r.progress_percent >= 20 for r in fakes.edge.reports_of("d1"))
            )
        have = part.stat().st_size
        assert 0 < have < len(v1.data)
        async with running(fakes, tmp_path / "home") as agent:
            outcome = await deploy(fakes, v1, "d1")  # deploy-svc sends it again to the returning agent
            assert outcome.status == COMPLETED, outcome.error_message
            resumed = [r for r in fakes.edge.reports_of("d1") if r.phase == "resuming"]
            assert [r.progress_percent for r in resumed] == [have * 100 // len(v1.data)]
            assert fakes.ranges == [None, f"bytes={have}-"]
            assert serving(agent) == {MODULE: "v1"}


async def test_a_slow_download_reports_percent_and_a_cancel_aborts_it(tmp_path: Path) -> None:
    v1 = version("v1", model_bytes(1, hidden=2048))  # about 40 KB
    rate = len(v1.data) / 4  # four seconds
    async with (
        cloud(tmp_path) as fakes,
        running(fakes, tmp_path / "home", max_download_bytes_per_s=rate) as agent,
    ):
        fakes.registry.add(v1)
        fakes.edge.assignments.put_nowait(v1.assignment("d1"))

        def moved() -> bool:
            return any(r.progress_percent >= 10 for r in fakes.edge.reports_of("d1"))

        await fakes.edge.wait_for(moved, 60)
        fakes.edge.assignments.put_nowait(
            deploy_pb2.Assignment(deployment_id="d1", attempt=1, cancelled=True)
        )
        await asyncio.sleep(0.5)
        assert agent.running() == {}
        reports = fakes.edge.reports_of("d1")
        assert all(r.status == DOWNLOADING for r in reports)
        percents = [r.progress_percent for r in reports]
        assert percents == sorted(percents)
        assert len(percents) >= 3
        assert all(b - a >= 5 for a, b in itertools.pairwise(percents))  # not a report per read
        assert (tmp_path / "home" / "downloads" / f"{v1.sha256}.part").exists()  # kept for a retry


async def test_the_same_assignment_twice_is_installed_once(tmp_path: Path) -> None:
    v1 = version("v1", model_bytes(1))
    async with cloud(tmp_path) as fakes, running(fakes, tmp_path / "home"):
        fakes.registry.add(v1)
        fakes.edge.assignments.put_nowait(v1.assignment("d1"))
        assert (await deploy(fakes, v1, "d1")).status == COMPLETED
        await asyncio.sleep(0.3)
        assert [r.status for r in fakes.edge.reports_of("d1")].count(COMPLETED) == 1
        assert len(fakes.registry.requests) == 1


async def test_a_broken_stream_is_reconnected(tmp_path: Path) -> None:
    v1 = version("v1", model_bytes(1))
    async with cloud(tmp_path) as fakes:
        fakes.edge.break_streams = 2
        fakes.registry.add(v1)
        async with running(fakes, tmp_path / "home") as agent:
            assert (await deploy(fakes, v1, "d1")).status == COMPLETED
            assert agent.reconnects == 2
            assert fakes.edge.streams == 3


async def test_failing_heartbeats_reopen_a_stream_that_may_be_dead(tmp_path: Path) -> None:
    v1 = version("v1", model_bytes(1))
    async with cloud(tmp_path) as fakes, running(fakes, tmp_path / "home") as agent:
        fakes.registry.add(v1)
        await asyncio.sleep(0.1)
        assert (fakes.edge.streams, agent.reconnects) == (1, 0)
        fakes.edge.fail_heartbeats = True
        await fakes.edge.wait_for(lambda: fakes.edge.streams >= 2, 60)
        fakes.edge.fail_heartbeats = False
        assert agent.reconnects >= 1
        assert (await deploy(fakes, v1, "d1")).status == COMPLETED  # the new stream works


async def test_a_cancellation_in_a_heartbeat_answer_aborts_the_install(tmp_path: Path) -> None:
    v1 = version("v1", model_bytes(1, hidden=2048))
    rate = len(v1.data) / 10
    async with (
        cloud(tmp_path) as fakes,
        running(fakes, tmp_path / "home", max_download_bytes_per_s=rate) as agent,
    ):
        fakes.registry.add(v1)
        fakes.edge.assignments.put_nowait(v1.assignment("d1"))
        await fakes.edge.wait_for(lambda: bool(fakes.edge.reports_of("d1")), 60)
        fakes.edge.cancelled.add("d1")
        beats = len(fakes.edge.heartbeats)
        await fakes.edge.wait_for(lambda: len(fakes.edge.heartbeats) > beats + 1, 60)
        await asyncio.sleep(0.2)
        assert not any(r.status in (COMPLETED, FAILED) for r in fakes.edge.reports_of("d1"))
        assert agent.running() == {}


async def test_a_progress_answer_saying_cancelled_stops_the_install(tmp_path: Path) -> None:
    v1 = version("v1", model_bytes(1, hidden=2048))
    async with cloud(tmp_path) as fakes:
        fakes.edge.heartbeats_cancel = False
        fakes.registry.add(v1)
        slow = len(v1.data) / 4
        async with running(fakes, tmp_path / "home", max_download_bytes_per_s=slow) as agent:
            fakes.edge.assignments.put_nowait(v1.assignment("d1"))
            await fakes.edge.wait_for(lambda: bool(fakes.edge.reports_of("d1")))
            fakes.edge.cancelled.add("d1")
            reports = len(fakes.edge.reports_of("d1"))
            await fakes.edge.wait_for(
                lambda: len(fakes.edge.reports_of("d1")) > reports
            )  # answered "cancelled"
            await asyncio.sleep(1.0)  # the download would report every 5 points (0.2 s) were it going on
            assert len(fakes.edge.reports_of("d1")) == reports + 1
            assert agent.running() == {}


async def test_an_install_that_deploy_svc_failed_meanwhile_stops(tmp_path: Path) -> None:
    v1 = version("v1", model_bytes(1, hidden=2048))
    async with cloud(tmp_path) as fakes:
        fakes.registry.add(v1)
        slow = len(v1.data) / 4
        async with running(fakes, tmp_path / "home", max_download_bytes_per_s=slow) as agent:
            fakes.edge.assignments.put_nowait(v1.assignment("d1"))
            await fakes.edge.wait_for(lambda: bool(fakes.edge.reports_of("d1")))
            fakes.edge.over["d1"] = "no progress before the deadline"
            reports = len(fakes.edge.reports_of("d1"))
            await fakes.edge.wait_for(lambda: len(fakes.edge.reports_of("d1")) > reports)  # answered "failed"
            await asyncio.sleep(1.0)
            assert len(fakes.edge.reports_of("d1")) == reports + 1
            assert agent.running() == {}


async def test_a_damaged_local_copy_is_downloaded_again(tmp_path: Path) -> None:
    v1, v2 = version("v1", model_bytes(1)), version("v2", model_bytes(2))
    async with cloud(tmp_path) as fakes, running(fakes, tmp_path / "home") as agent:
        fakes.registry.add(v1)
        fakes.registry.add(v2)
        assert (await deploy(fakes, v1, "d1")).status == COMPLETED
        assert (await deploy(fakes, v2, "d2")).status == COMPLETED
        (tmp_path / "home" / "versions" / "v1" / "model.pt").write_bytes(b"rotten")
        outcome = await deploy(fakes, v1, "d3", kind="rollback")
        assert outcome.status == COMPLETED, outcome.error_message
        assert [r.version_id for r in fakes.registry.requests] == ["v1", "v2", "v1"]
        assert serving(agent) == {MODULE: "v1"}
        assert (tmp_path / "home" / "versions" / "v1" / "model.pt").read_bytes() == v1.data


async def test_agents_sharing_channels_and_a_session_each_call_as_themselves(tmp_path: Path) -> None:
    async with cloud(tmp_path) as fakes, AsyncExitStack() as stack:
        deploy_channel = await stack.enter_async_context(
            aio.insecure_channel(f"127.0.0.1:{fakes.deploy_port}")
        )
        registry_channel = await stack.enter_async_context(
            aio.insecure_channel(f"127.0.0.1:{fakes.registry_port}")
        )
        http = await stack.enter_async_context(aiohttp.ClientSession())
        stop = asyncio.Event()
        agents = [
            EdgeAgent(
                agent_config(
                    tmp_path / name,
                    fakes.deploy_port,
                    fakes.registry_port,
                    server_id=name,
                    token=f"token-{name}",
                ),
                deploy_channel=deploy_channel,
                registry_channel=registry_channel,
                http_session=http,
            )
            for name in ("edge-a", "edge-b")
        ]
        tasks = [asyncio.create_task(agent.run(stop)) for agent in agents]
        await asyncio.wait_for(asyncio.gather(*(agent.registered.wait() for agent in agents)), 60)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        assert fakes.edge.tokens == {"edge-a": {"Bearer token-edge-a"}, "edge-b": {"Bearer token-edge-b"}}
        assert not http.closed  # what was given is the caller's to close
