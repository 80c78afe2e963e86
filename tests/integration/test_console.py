"""The operator console in a real browser against the running stack (issue 15, item 3).

Debian's Chromium, driven by the playwright package through `executable_path` (no browser is ever
downloaded), signs in with a token, watches a job train to completed while its curves grow, cancels a
queued job through the confirmation page, and sees a service's refusal. Every request the pages make
to any host other than the console fails the test, and so does a Content-Security-Policy violation or
a script error. Screenshots go to `.modelyard/test-artifacts/console/` (ignored by git), or to
`$MODELYARD_TEST_ARTIFACTS/console/`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, Route, async_playwright, expect

from modelyard.v1 import deploy_pb2, jobs_pb2, registry_pb2
from modelyard_devstack.platform import CONSOLE, Platform
from modelyard_devstack.processes import eventually
from tests.integration.deploy_client import DeployClient
from tests.integration.deploy_flow import released
from tests.integration.job_client import JobClient
from tests.integration.registry_client import RegistryClient
from tests.integration.registry_flow import evaluated, train_version
from tests.integration.trainers import Trainers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]  # training, evaluation, approval

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(os.environ.get("MODELYARD_TEST_ARTIFACTS", ".modelyard/test-artifacts")) / "console"
TRAINING = {"epochs": 6, "batch_size": 32}
WATCH_TIMEOUT_MS = 420_000  # a loaded 2-core CI machine trains slowly


def chromium_or_skip() -> Path:
    """Debian's Chromium, installed here when missing and this is root; the test skips otherwise."""
    if not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        install = "apt-get update -q && apt-get install -y -q --no-install-recommends chromium"
        subprocess.run(["sh", "-c", install], check=False, capture_output=True, timeout=600)
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent and could not be installed (`make browser` as root installs it)")
    return CHROMIUM


@pytest.fixture(scope="module")
def console_url(services: Platform) -> Iterator[str]:
    """The console as its own process, pointed at the platform's services like yard would be."""
    url = services.start_console(refresh_s=0.5)
    try:
        yield url
    finally:
        services.stop(CONSOLE)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium for the module."""
    executable = chromium_or_skip()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


class Guard:
    """What the page did that it must not: requests to other hosts, CSP violations, script errors."""

    def __init__(self, console_url: str) -> None:
        self.origin = urlsplit(console_url).netloc
        self.foreign: list[str] = []
        self.errors: list[str] = []

    async def route(self, route: Route) -> None:
        """Let requests to the console through; record and abort every other."""
        if urlsplit(route.request.url).netloc == self.origin:
            await route.continue_()
        else:
            self.foreign.append(route.request.url)
            await route.abort()

    def console_message(self, kind: str, text: str) -> None:
        if kind == "error" or "Content Security Policy" in text:
            self.errors.append(text)

    def check(self) -> None:
        assert not self.foreign, f"the console's pages asked other hosts: {self.foreign}"
        assert not self.errors, f"errors in the browser: {self.errors}"


@pytest.fixture
async def page(browser: Browser, console_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A fresh browser context on the console, guarded (checked after the test)."""
    guard = Guard(console_url)
    context: BrowserContext = await browser.new_context(
        base_url=console_url, viewport={"width": 1400, "height": 900}
    )
    await context.route("**/*", guard.route)
    opened = await context.new_page()
    opened.on("console", lambda message: guard.console_message(message.type, message.text))
    opened.on("pageerror", lambda error: guard.errors.append(str(error)))
    yield opened
    await context.close()
    guard.check()


async def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def sign_in(page: Page, token: str, subject: str) -> None:
    """Paste the token into the sign-in form, by keyboard, and land on the dashboard."""
    await page.goto("/signin")
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Sign in").press("Enter")
    await expect(page.get_by_test_id("signed-in-as")).to_contain_text(f"Signed in as {subject}")


def done_notice(page: Page) -> Locator:
    """The notice a command leaves ("✔ Done — …"): a running job's phase line is a status too."""
    return page.get_by_role("status").filter(has_text="Done —")


async def test_an_operator_submits_a_job_and_watches_it_train_to_completed_while_its_curves_grow(
    page: Page, services: Platform, jobs: JobClient, trainers: Trainers, fresh_org: str, digits_uri: str
) -> None:
    await sign_in(page, services.token(subject="ops-ada", org_id=fresh_org), "ops-ada")
    await expect(page.get_by_test_id("signed-in-as")).to_contain_text("roles super_admin")
    await trainers.start("t-console")

    await page.get_by_role("link", name="Queue").click()
    await page.get_by_role("link", name="Submit a job").click()
    await page.get_by_label("Name").fill("digits from the console")
    await page.get_by_label("AI module").fill("digit-reader")
    await page.get_by_label("Dataset").fill(digits_uri)
    params = "\n".join(f"{key}={value}" for key, value in TRAINING.items())
    await page.get_by_label("Hyperparameters").fill(params)
    await page.get_by_role("button", name="Submit the job").click()
    await expect(done_notice(page)).to_contain_text("digits from the console")
    job_id = page.url.rsplit("/", 1)[-1]
    other = await jobs.create(fresh_org, digits_uri, epochs=2, batch_size=128)  # another run to compare

    bar = page.get_by_test_id("job-progress").locator("progress")
    state = page.get_by_test_id("job-state")
    chart = page.get_by_test_id("loss-chart")
    progress_seen: list[float] = []
    points_seen: list[int] = []
    deadline = time.monotonic() + WATCH_TIMEOUT_MS / 1000
    while "completed" not in (await state.inner_text()):  # the page is never reloaded: SSE moves it
        assert time.monotonic() < deadline, f"job still {await state.inner_text()}: {progress_seen}"
        progress_seen.append(float(await bar.get_attribute("value") or 0))
        points_seen.append(int(await chart.get_attribute("data-points") or 0))
        if len(progress_seen) == 20:
            await screenshot(page, "job-running")
        await page.wait_for_timeout(250)

    await expect(bar).to_have_attribute("value", "100.0")
    await expect(chart).to_have_attribute("data-points", str(TRAINING["epochs"]), timeout=10_000)
    await expect(chart.locator("canvas")).to_have_count(1)
    await expect(page.get_by_test_id("job-logs")).to_contain_text("INFO", timeout=30_000)  # the run logged
    await screenshot(page, "job-completed")
    moving = sorted(set(progress_seen))
    assert len(moving) >= 3, f"the bar hardly moved while the job ran: {moving}"
    grown = sorted(set(points_seen))
    assert len([n for n in grown if 0 < n < TRAINING["epochs"]]) >= 1, f"the chart did not grow: {grown}"

    # Its metrics export as CSV, one row per epoch.
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Export metrics as CSV").click()
    downloaded = Path(await (await download_info.value).path())
    csv_text = await asyncio.to_thread(downloaded.read_text)
    assert csv_text.splitlines()[0].startswith("epoch,attempt,train_loss,val_loss,val_accuracy")
    assert len(csv_text.splitlines()) == 1 + TRAINING["epochs"]

    # The dashboard shows the second run live, with its bar.
    await page.get_by_role("link", name="Dashboard").click()
    row = page.locator(f"[data-testid=active-jobs] tr[data-job-id='{other.job_id}']")
    await expect(row.locator("progress")).to_have_count(1, timeout=30_000)
    await expect(page.get_by_test_id("trainer-slots")).to_be_visible()
    await screenshot(page, "dashboard")

    # History: both runs on one chart.
    await jobs.wait_for(other.job_id, jobs_pb2.JOB_STATE_COMPLETED, timeout_s=WATCH_TIMEOUT_MS / 1000)

    async def both_epochs_recorded() -> bool:  # the metrics view may trail the job's state
        return len(await jobs.epochs(other.job_id)) == 2

    await eventually(both_epochs_recorded, 30, "the second run's epochs in its metrics")
    await page.get_by_role("link", name="History").click()
    for picked in (job_id, other.job_id):
        await page.get_by_label(f"({picked})").check()
    await page.get_by_role("button", name="Compare the selected runs").click()
    compared = page.get_by_test_id("compare-loss-chart")
    await expect(compared).to_have_attribute("data-points", str(TRAINING["epochs"]))
    data = await (await page.request.get(await compared.get_attribute("data-chart-url") or "")).json()
    drawn = {s["label"]: [v for v in s["values"] if v is not None] for s in data["loss"]["series"]}
    assert [len(values) for values in drawn.values()] == [2, 2, 6, 6], drawn  # newest run first
    await expect(page.locator(".u-legend").first).to_contain_text("digits test")
    await expect(page.locator(".u-legend").first).to_contain_text("digits from the console")
    await screenshot(page, "compare")


async def test_cancelling_a_queued_job_asks_first_then_cancels(
    page: Page, services: Platform, jobs: JobClient, trainers: Trainers, fresh_org: str, digits_uri: str
) -> None:
    job = await jobs.create(fresh_org, digits_uri)  # no trainer is alive: it stays queued
    await sign_in(page, services.token(subject="ops-ben"), "ops-ben")
    await page.goto("/queue")
    row = page.locator(f"[data-testid=queue] tr[data-job-id='{job.job_id}']")
    await expect(row).to_contain_text("queued")

    await row.get_by_role("link", name="Cancel").focus()
    await page.keyboard.press("Enter")  # by keyboard
    await expect(page.get_by_role("heading", name="Cancel this job?")).to_be_visible()
    await screenshot(page, "cancel-confirmation")
    assert (await jobs.get(job.job_id)).state == jobs_pb2.JOB_STATE_QUEUED  # asking cancels nothing

    await page.get_by_label("Reason").fill("wrong dataset")
    await page.get_by_role("button", name="Yes, cancel the job").click()
    await expect(done_notice(page)).to_contain_text(f"({job.job_id}) cancelled")
    await jobs.wait_for(job.job_id, jobs_pb2.JOB_STATE_CANCELLED, timeout_s=30)  # the views catch up
    await page.reload()
    await expect(page.locator(f"[data-job-id='{job.job_id}']")).to_have_count(0)
    await screenshot(page, "queue-after-cancel")


async def test_a_refused_command_shows_the_services_status_and_message(
    page: Page, services: Platform, jobs: JobClient, trainers: Trainers, fresh_org: str, digits_uri: str
) -> None:
    job = await jobs.create(fresh_org, digits_uri)
    # An org_admin reads its organization's jobs but may not command them.
    await sign_in(page, services.token(("org_admin",), fresh_org, "viewer-cy"), "viewer-cy")
    await page.goto("/queue")
    row = page.locator(f"[data-testid=queue] tr[data-job-id='{job.job_id}']")
    await row.get_by_role("button", name="Pause").click()
    refusal = page.get_by_role("alert")
    await expect(refusal).to_contain_text("Refused — PERMISSION_DENIED")
    await screenshot(page, "refused-pause")
    assert (await jobs.get(job.job_id)).state == jobs_pb2.JOB_STATE_QUEUED
    await jobs.jobs.CancelJob(jobs_pb2.JobCommand(job_id=job.job_id, reason="test over"))


async def badge_says(page: Page, word: str, timeout_s: float = 30) -> None:
    """Reload until the page's first badge says `word` (the registry's views catch up after a command)."""
    badge = page.locator("main .badge").first
    deadline = time.monotonic() + timeout_s
    while word not in await badge.inner_text():
        assert time.monotonic() < deadline, f"the version is still {await badge.inner_text()}"
        await page.wait_for_timeout(250)
        await page.reload()


async def test_a_self_approval_is_refused_then_a_second_admin_approves_and_releases(
    page: Page, services: Platform, jobs: JobClient, trainers: Trainers, fresh_org: str, digits_uri: str
) -> None:
    await trainers.start("t-console-models")
    async with RegistryClient.connect(services.registry_target, services.token()) as registry:
        version = await train_version(jobs, registry, fresh_org, digits_uri)  # trained by "dev"
        await evaluated(registry, version.version_id)  # and evaluated at "dev"'s request
    page_of_version = f"/models/{version.version_id}"

    await sign_in(page, services.token(subject="dev"), "dev")
    await page.goto(page_of_version)
    await badge_says(page, "testing")
    await page.get_by_role("button", name="Approve").click()
    refusal = page.get_by_role("alert")
    await expect(refusal).to_contain_text("Refused — PERMISSION_DENIED")
    await expect(refusal).to_contain_text("four eyes")
    await screenshot(page, "model-self-approval-refused")

    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, services.token(subject="carol"), "carol")
    await page.get_by_role("link", name="Models").click()
    await page.locator(f"tr[data-version-id='{version.version_id}']").get_by_role("link").click()
    await page.get_by_role("button", name="Approve").click()
    await expect(done_notice(page)).to_contain_text(f"version {version.version_id} approved")
    await badge_says(page, "approved")
    await page.get_by_label("Release notes").fill("first digits reader")
    await page.get_by_role("button", name="Release").click()
    await expect(done_notice(page)).to_contain_text("released")
    await badge_says(page, "released")
    await screenshot(page, "model-released")
    async with RegistryClient.connect(services.registry_target, services.token()) as registry:
        released = await registry.get(version.version_id)
    assert (released.status, released.approved_by) == (registry_pb2.MODEL_STATUS_RELEASED, "carol")


async def test_the_audit_page_finds_a_new_job_and_draws_its_lineage(
    page: Page, services: Platform, jobs: JobClient, trainers: Trainers, fresh_org: str, digits_uri: str
) -> None:
    job = await jobs.create(fresh_org, digits_uri)  # no trainer is alive: it stays queued
    await sign_in(page, services.token(subject="auditor-di"), "auditor-di")
    await page.get_by_role("link", name="Audit").click()
    await page.get_by_label("Entity type").fill("training_job")
    await page.get_by_label("Entity id").fill(job.job_id)
    await page.get_by_role("button", name="Search").click()
    found = page.get_by_test_id("audit-events").locator("tr", has_text="JobCreated")
    deadline = time.monotonic() + 30
    while not await found.count():  # the audit view follows the logs a moment behind
        assert time.monotonic() < deadline, "JobCreated never showed in the audit search"
        await page.wait_for_timeout(250)
        await page.reload()
    await screenshot(page, "audit-search")

    await found.get_by_role("link", name=f"lineage of training_job/{job.job_id}").click()
    graph = page.get_by_test_id("lineage-graph")
    await expect(graph.locator(f"[data-kind=job][data-node-id='{job.job_id}'] a")).to_have_count(1)
    await expect(page.get_by_test_id("lineage-list")).to_contain_text(job.job_id)
    await screenshot(page, "audit-lineage")
    await jobs.jobs.CancelJob(jobs_pb2.JobCommand(job_id=job.job_id, reason="test over"))


async def test_the_fleet_page_follows_a_rollout_to_completed_on_every_server(
    page: Page, services: Platform, jobs: JobClient, trainers: Trainers, fresh_org: str, digits_uri: str
) -> None:
    await trainers.start("t-console-fleet")
    async with RegistryClient.connect(services.registry_target, services.token()) as registry:
        version = await released(services, jobs, registry, fresh_org, digits_uri, module="fleet-reader")
    await trainers.stop_all()  # the agents' installs get the CPU
    target = f"{version.ai_module} {version.semantic_version}"
    servers = [f"edge-console-{fresh_org}-{i}" for i in (1, 2, 3)]
    async with DeployClient.connect(services.deploy_target, services.token()) as deploy:
        # Over a slow link (about 3 s a download) every server is mid-deployment for several of the
        # live part's half-second swaps: a fast machine installs the small model between two of them.
        slow = ["--max-download-bytes-per-s", str(max(version.artifact_size_bytes // 3, 1024))]
        agents = [services.start_edge_agent(server, fresh_org, extra_args=slow) for server in servers]
        try:
            for server in servers:
                await deploy.wait_registered(fresh_org, server)
            # The organization's own admin: the page lists its servers only, whatever else the session runs.
            await sign_in(page, services.token(("org_admin",), fresh_org, "ops-fleet"), "ops-fleet")
            await page.get_by_role("link", name="Fleet", exact=True).click()
            rows = {s: page.locator(f"tr[data-server-id='{s}']") for s in servers}
            for row in rows.values():
                await expect(row).to_contain_text("online")
            rollout = await deploy.rollout(version.version_id, servers, wave_sizes=[1, 2], reason="console")
            seen_installing: set[str] = set()
            deadline = time.monotonic() + 240
            while True:  # the live part swaps every half second; read what it shows as it goes
                texts = {s: await row.inner_text() for s, row in rows.items()}
                installing = {s for s, t in texts.items() if "%" in t and target in t}
                if installing and not seen_installing:
                    await screenshot(page, "fleet-rollout-in-progress")
                seen_installing |= installing
                if all(_runs(t, target) for t in texts.values()):
                    break
                assert time.monotonic() < deadline, f"{target} is not shown everywhere: {texts}"
                await page.wait_for_timeout(200)
            rollout_row = page.locator(f"tr[data-rollout-id='{rollout.rollout_id}']")
            await expect(rollout_row).to_contain_text("completed")
            await expect(rollout_row).to_contain_text("wave 1: 2/2 done")
            await screenshot(page, "fleet-rollout-completed")
            assert seen_installing, "no server was ever shown mid-deployment with its progress"
            done = await deploy.wait_rollout(rollout.rollout_id)
            assert done.state == deploy_pb2.ROLLOUT_STATE_COMPLETED, done
        finally:
            for agent in agents:
                services.stop_edge_agent(agent)


def _runs(row_text: str, target: str) -> bool:
    """A server row that says it runs `target`, in step with what it should run, and installs nothing."""
    return row_text.count(target) == 2 and "in step" in row_text and "%" not in row_text
