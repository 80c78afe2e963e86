"""The Modelyard services as child processes: every service and the trainer workers.

`platform(infra, workdir)` starts dataset-svc, job-svc, trainer-svc's API process, registry-svc and
deploy-svc, waits until each reports SERVING on gRPC health, and yields a `Platform` that starts (and
kills) trainer workers and edge agents and waits until job-svc has heard from the workers. Tests,
`make demo` and the benchmarks share it.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

import grpc

from modelyard.v1 import deploy_pb2, deploy_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from modelyard_devstack.processes import eventually, free_port, kill_pid, spawn, stop_pid, wait_until
from modelyard_devstack.stack import Infra, separate_database
from modelyard_events.signing import Ed25519Key, HeadSigner
from modelyard_grpc import TlsSettings, TokenIssuer, mint_token, wait_until_serving
from modelyard_grpc.auth import SERVICES
from modelyard_grpc.client import TokenSource

_READY_TIMEOUT_S = 60.0
_WITHHELD_FROM_WORKERS = frozenset(
    {
        "DATABASE_URL",
        "MODELYARD_DATABASE_URL",
        "MODELYARD_EVENT_SIGNING_KEY",
        "MODELYARD_REGISTRY_SIGNING_KEY",
    }
)
_SOURCES = ("dataset", "job", "trainer", "registry", "deploy")
_SERVICE_TOKEN_TTL_S = 12 * 3600.0
# Agents heartbeat often on a dev platform, so tests and the demo see a server online (and drift
# settle) within seconds; a fleet keeps deploy-svc's default.
_DEV_HEARTBEAT_INTERVAL_S = 2.0
_EDGE_AGENT_PREFIX = "edge-agent-"
_WORKER_PREFIXES = ("trainer-", _EDGE_AGENT_PREFIX)
CONSOLE = "console"


@dataclass(frozen=True)
class EdgeAgent:
    """An edge agent process started by `Platform.start_edge_agent`, and how it was started (so that a
    test can start it again on the same home: a restarted agent resumes where the killed one stopped)."""

    server_id: str
    org_id: str
    environment: str
    home: Path
    token_file: Path
    process_name: str
    args: tuple[str, ...]
    log: Path
    env: Mapping[str, str] = field(repr=False)


@dataclass
class Platform:
    """Running services: where to reach them, the token issuer's key, and the processes to stop."""

    infra: Infra
    workdir: Path
    issuer: TokenIssuer  # the platform is the token issuer: services get only its public key
    job_target: str
    trainer_target: str
    dataset_target: str
    base_env: dict[str, str]
    signers: dict[str, HeadSigner]  # each service's event signing key, by source name
    registry_target: str = ""
    registry_url: str = ""  # registry-svc's signed-download endpoint
    registry_key: Ed25519Key | None = None  # signs artifact manifests and URLs; edges pin its public key
    deploy_target: str = ""  # deploy-svc's gRPC address ("" when deploy-svc is not installed)
    processes: dict[str, Popen[bytes]] = field(default_factory=dict)
    # how each service was started (module, args, target, env), so a test can restart it
    started: dict[str, tuple[str, list[str], str, dict[str, str]]] = field(default_factory=dict)

    def token(
        self, roles: tuple[str, ...] = ("super_admin",), org_id: str | None = None, subject: str = "dev"
    ) -> str:
        """A bearer token for this platform's services (signed by its issuer key, valid one hour)."""
        return mint_token(self.issuer, subject, org_id, list(roles), 3600)

    def token_file(
        self, subject: str, roles: tuple[str, ...], audience: tuple[str, ...], org_id: str | None = None
    ) -> Path:
        """Write a process's own token where MODELYARD_TOKEN_FILE will point (valid 12 hours).

        What an issuer does for services and workers: they hold no signing key, only this file. A token
        of an organization (an edge server's) is kept under that organization's folder.
        """
        folder = self.workdir / "tokens" / (org_id or "")
        path = folder / f"{subject}.token"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(mint_token(self.issuer, subject, org_id, list(roles), _SERVICE_TOKEN_TTL_S, audience))
        path.chmod(0o600)
        return path

    def spawn_trainer(
        self, trainer_id: str, slots: int = 1, env: Mapping[str, str] | None = None
    ) -> Popen[bytes]:
        """Start a trainer worker (await `trainer_alive` before relying on it).

        It gets no database URL and no signing key: it reports through trainer-svc's AppendReports.
        """
        worker_env = {
            **{name: value for name, value in self.base_env.items() if name not in _WITHHELD_FROM_WORKERS},
            "MODELYARD_TRAINER_ID": trainer_id,
            "MODELYARD_TOKEN_FILE": str(self.token_file(trainer_id, ("trainer",), SERVICES)),
            "MODELYARD_TRAINER_SLOTS": str(slots),
        }
        return self._start(
            f"trainer-{trainer_id}", ["work"], "modelyard_trainer", {**worker_env, **(env or {})}
        )

    async def trainer_alive(self, trainer_id: str, timeout_s: float = _READY_TIMEOUT_S) -> None:
        """Return once job-svc lists the worker as alive; RuntimeError with its log if it exited."""
        process, log_path = self.processes[f"trainer-{trainer_id}"], self.log_of(f"trainer-{trainer_id}")

        async def alive() -> bool:
            _check_running(process, log_path)
            return await _lists_trainer(self.channel(self.job_target, self.token(("auditor",))), trainer_id)

        await eventually(alive, timeout_s, f"trainer {trainer_id} heartbeating to job-svc")

    def start_edge_agent(
        self,
        server_id: str,
        org_id: str,
        *,
        environment: str = "production",
        extra_args: Sequence[str] = (),
        home: Path | None = None,
        registry_public_keys: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> EdgeAgent:
        """Start `yard edge-agent` playing edge server `server_id` of `org_id` (it registers itself;
        await deploy-svc listing it before relying on it).

        It gets an edge token (subject `server_id`, role edge, for deploy-svc and registry-svc only) and
        pins the registry's public key, or `registry_public_keys` instead (a wrongly pinned agent, which
        must refuse every artifact). No database URL, no signing key. Its models live under `home`
        (default: workdir/edge/<org>/<server>), which a restart keeps.
        """
        if not self.deploy_target:
            raise RuntimeError(
                "deploy-svc is not running on this platform (modelyard_deploy is not installed)"
            )
        pinned = (
            list(registry_public_keys)
            if registry_public_keys is not None
            else [self._registry_key().public_text()]
        )
        agent_home = home or self.workdir / "edge" / org_id / server_id
        agent_home.mkdir(parents=True, exist_ok=True)
        token = self.token_file(server_id, ("edge",), ("deploy-svc", "registry-svc"), org_id=org_id)
        agent_env = {
            **{name: value for name, value in self.base_env.items() if name not in _WITHHELD_FROM_WORKERS},
            "MODELYARD_TOKEN_FILE": str(token),
            "MODELYARD_REGISTRY_PUBLIC_KEYS": json.dumps(pinned),
            **(env or {}),
        }
        args = (
            "--server-id", server_id, "--environment", environment, "--home", str(agent_home),
            "--deploy-target", self.deploy_target, "--registry-target", self.registry_target, *extra_args,
        )  # fmt: skip
        name = f"{_EDGE_AGENT_PREFIX}{org_id}-{server_id}"
        agent = EdgeAgent(
            server_id, org_id, environment, agent_home, token, name, args, self.log_of(name), agent_env
        )
        return self._start_agent(agent)

    def restart_edge_agent(self, agent: EdgeAgent) -> EdgeAgent:
        """Start a stopped (or killed) agent again as it was started, on the same home."""
        if agent.process_name in self.processes:
            self.stop_edge_agent(agent)
        return self._start_agent(agent)

    def stop_edge_agent(self, agent: EdgeAgent, kill: bool = False) -> None:
        """Stop an agent: SIGTERM (it may finish its step), or with `kill` SIGKILL at once (a crash
        mid-download, which a restarted agent must resume)."""
        process = self.processes.pop(agent.process_name)
        if kill:
            kill_pid(process.pid)
        else:
            stop_pid(process.pid)

    async def edge_agent_online(self, agent: EdgeAgent, timeout_s: float = _READY_TIMEOUT_S) -> None:
        """Return once deploy-svc lists the agent's server online; RuntimeError with its log if it exited."""
        process = self.processes[agent.process_name]

        async def online() -> bool:
            _check_running(process, agent.log)
            token = self.token(("super_admin",), agent.org_id)
            return await _edge_online(self.channel(self.deploy_target, token), agent)

        await eventually(online, timeout_s, f"edge agent {agent.server_id} registered with deploy-svc")

    def edge_agent_running(self, agent: EdgeAgent) -> bool:
        """Whether the agent's process is still running (it exits on bad settings, with its log)."""
        process = self.processes.get(agent.process_name)
        return process is not None and process.poll() is None

    def _start_agent(self, agent: EdgeAgent) -> EdgeAgent:
        self._start(agent.process_name, ["edge-agent", *agent.args], "modelyard_cli", agent.env)
        return agent

    def _registry_key(self) -> Ed25519Key:
        if self.registry_key is None:
            raise RuntimeError("this platform has no registry key (registry-svc was not started by it)")
        return self.registry_key

    @property
    def tls(self) -> TlsSettings:
        """How the services serve and dial: the MODELYARD_TLS_* of their environment (plaintext if none)."""
        return TlsSettings.from_environ(self.base_env)

    def channel(self, target: str, token: TokenSource | None = None) -> grpc.aio.Channel:
        """A channel to one of the services, over TLS when they serve it (with the platform's CA)."""
        return self.tls.grpc_channel(target, token)

    def signing_env(self, source: str) -> dict[str, str]:
        """The environment that hands `source`'s private signing key to a process of that service."""
        return {"MODELYARD_EVENT_SIGNING_KEY": self.signers[source].private_text()}

    def start_service(
        self, name: str, module: str, args: list[str], target: str, env: Mapping[str, str] | None = None
    ) -> Popen[bytes]:
        """Start a service process (base environment + `env`); return once it answers SERVING."""
        self.started[name] = (module, list(args), target, dict(env or {}))
        process_env = {**self.base_env, **(env or {})}
        process = self._start(name, args, module, process_env)
        dialling = TlsSettings.from_environ(process_env)
        ready = functools.partial(
            _serving, process, self.log_of(name), functools.partial(dialling.grpc_channel, target)
        )
        wait_until(ready, _READY_TIMEOUT_S, name)
        return process

    def start_console(self, refresh_s: float = 1.0) -> str:
        """Start the web console (clients/console) against these services; return its URL once it
        answers. It holds no token: a person signs in with one (`token`)."""
        port = free_port()
        args = ["--port", str(port), "--refresh-s", str(refresh_s)]
        process = self._start(CONSOLE, args, "modelyard_console", self.base_env)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _console_answers(url, process, self.log_of(CONSOLE)), _READY_TIMEOUT_S, CONSOLE)
        return url

    def restart_service(self, name: str) -> Popen[bytes]:
        """(Stop and) start again a service started by `start_service`, as it was started."""
        module, args, target, env = self.started[name]
        if name in self.processes:
            self.stop(name)
        return self.start_service(name, module, args, target, env)

    def stop(self, name: str) -> None:
        """SIGTERM a process by name (SIGKILL after a grace period) and forget it."""
        process = self.processes.pop(name)
        stop_pid(process.pid)

    def log_of(self, name: str) -> Path:
        """Where a process logs."""
        return self.workdir / "logs" / f"{name}.log"

    def log_tails(self, lines: int = 12) -> str:
        """The load average and the last lines of every log here, for a failed test's report."""
        parts = [f"load average (1, 5, 15 min): {os.getloadavg()}"]
        for log in sorted((self.workdir / "logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.stem} ({'running' if log.stem in self.processes else 'stopped'})")
            parts.extend(line[:300] for line in tail)
        return "\n".join(parts)

    def _start(self, name: str, args: list[str], module: str, env: Mapping[str, str]) -> Popen[bytes]:
        self.log_of(name).parent.mkdir(parents=True, exist_ok=True)
        process = spawn([sys.executable, "-m", module, *args], self.log_of(name), env=env)
        self.processes[name] = process
        return process


@contextmanager
def platform(
    infra: Infra,
    workdir: Path,
    *,
    lease_ttl_s: float = 30.0,
    topic_namespace: str = "modelyard",
    env: Mapping[str, str] | None = None,
    database: str | None = None,
) -> Iterator[Platform]:
    """dataset-svc, job-svc, trainer-svc and registry-svc running against `infra` for the block; all
    stopped afterwards. A second platform on the same servers names a `database` of its own."""
    if database is not None:
        with ExitStack() as separate:
            servers = separate.enter_context(separate_database(infra, database))
            yield separate.enter_context(
                platform(servers, workdir, lease_ttl_s=lease_ttl_s, topic_namespace=topic_namespace, env=env)
            )
        return
    job_port, trainer_port, dataset_port = free_port(), free_port(), free_port()
    registry_port, registry_http_port, deploy_port = free_port(), free_port(), free_port()
    registry_key = Ed25519Key.generate()
    issuer = TokenIssuer.generate()
    # A key per service, made for this platform: each process gets only its own service's key,
    # and every process pins all three public keys.
    signers = {source: HeadSigner.generate() for source in _SOURCES}
    public_keys = json.dumps({source: [s.public_text()] for source, s in signers.items()})
    base_env = {
        **os.environ,
        "DATABASE_URL": infra.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap_servers,
        "MODELYARD_TOKEN_PUBLIC_KEYS": json.dumps([issuer.public_text()]),
        "MODELYARD_JOB_GRPC_PORT": str(job_port),
        "MODELYARD_TRAINER_GRPC_PORT": str(trainer_port),
        "MODELYARD_JOB_SVC_TARGET": f"127.0.0.1:{job_port}",
        "MODELYARD_TRAINER_SVC_TARGET": f"127.0.0.1:{trainer_port}",
        "MODELYARD_DATASET_GRPC_PORT": str(dataset_port),
        "MODELYARD_DATASET_SVC_TARGET": f"127.0.0.1:{dataset_port}",
        "MODELYARD_REGISTRY_GRPC_PORT": str(registry_port),
        "MODELYARD_REGISTRY_SVC_TARGET": f"127.0.0.1:{registry_port}",
        "MODELYARD_REGISTRY_HTTP_PORT": str(registry_http_port),
        "MODELYARD_REGISTRY_HTTP_BIND": "127.0.0.1",
        "MODELYARD_REGISTRY_PUBLIC_URL": f"http://127.0.0.1:{registry_http_port}",
        "MODELYARD_REGISTRY_PUBLIC_KEYS": json.dumps([registry_key.public_text()]),
        "MODELYARD_DEPLOY_GRPC_PORT": str(deploy_port),
        "MODELYARD_DEPLOY_TARGET": f"127.0.0.1:{deploy_port}",
        "MODELYARD_EDGE_HEARTBEAT_INTERVAL_S": str(_DEV_HEARTBEAT_INTERVAL_S),
        "MODELYARD_ARTIFACT_ROOTS": json.dumps([str(workdir / "runs")]),
        "MODELYARD_BLOB_ROOT": str(workdir / "blobs"),
        "MODELYARD_TRAINER_ROOT": str(workdir / "runs"),
        "MODELYARD_LEASE_TTL_S": str(lease_ttl_s),
        "MODELYARD_TOPIC_NAMESPACE": topic_namespace,
        # Development, tests, the demo and the benchmarks train on local files too; a cluster does not.
        "MODELYARD_ALLOW_FILE_DATASETS": "true",
        "MODELYARD_EVENT_PUBLIC_KEYS": public_keys,
        **(env or {}),
    }
    running = Platform(
        infra,
        workdir,
        issuer,
        f"127.0.0.1:{job_port}",
        f"127.0.0.1:{trainer_port}",
        f"127.0.0.1:{dataset_port}",
        base_env,
        signers,
        f"127.0.0.1:{registry_port}",
        f"http://127.0.0.1:{registry_http_port}",
        registry_key,
        f"127.0.0.1:{deploy_port}" if _deploy_svc_installed() else "",
    )
    services = [
        ("dataset-svc", "modelyard_dataset", [], running.dataset_target, "dataset"),
        ("trainer-svc", "modelyard_trainer", ["serve"], running.trainer_target, "trainer"),
        ("job-svc", "modelyard_job", [], running.job_target, "job"),
        ("registry-svc", "modelyard_registry", [], running.registry_target, "registry"),
    ]
    if running.deploy_target:
        services.append(("deploy-svc", "modelyard_deploy", [], running.deploy_target, "deploy"))
    with ExitStack() as stack:
        stack.callback(_stop_all, running)
        for name, module, args, target, source in services:
            env = running.signing_env(source)
            if name == "dataset-svc":  # it reads job-svc's and registry-svc's logs (which versions were used)
                own = running.token_file("dataset-svc", ("auditor",), ("job-svc", "registry-svc"))
                env["MODELYARD_TOKEN_FILE"] = str(own)
            if name == "trainer-svc":  # it asks job-svc whose a dispatch is (a report stream's first append)
                env["MODELYARD_TOKEN_FILE"] = str(
                    running.token_file("trainer-svc", ("auditor",), ("job-svc",))
                )
            if name == "job-svc":  # it calls dataset-svc (GetVersion), trainer-svc, registry-svc, deploy-svc
                callees = ("dataset-svc", "trainer-svc", "registry-svc", "deploy-svc")
                env["MODELYARD_TOKEN_FILE"] = str(running.token_file("job-svc", ("auditor",), callees))
            if name == "registry-svc":  # it reads job-svc's log; it keeps its own blobs and signing key
                own = running.token_file("registry-svc", ("auditor",), ("job-svc",))
                env["MODELYARD_TOKEN_FILE"] = str(own)
                env["MODELYARD_BLOB_ROOT"] = str(workdir / "registry-blobs")
                env["MODELYARD_REGISTRY_SIGNING_KEY"] = registry_key.private_text()
            if name == "deploy-svc":  # it reads registry-svc's log and lists job-svc's jobs
                own = running.token_file("deploy-svc", ("auditor",), ("registry-svc", "job-svc"))
                env["MODELYARD_TOKEN_FILE"] = str(own)
            running.start_service(name, module, args, target, env)
        yield running


def _stop_all(running: Platform) -> None:
    # Workers, agents and the console first (clients of job-svc and deploy-svc), then the services.
    first = (*_WORKER_PREFIXES, CONSOLE)
    for name in sorted(running.processes, key=lambda n: not n.startswith(first)):
        running.stop(name)


def _console_answers(url: str, process: Popen[bytes], log_path: Path) -> bool:
    _check_running(process, log_path)
    try:
        with urllib.request.urlopen(f"{url}/signin", timeout=2.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _deploy_svc_installed() -> bool:
    """Whether deploy-svc can be started (`python -m modelyard_deploy`); while it is being written, the
    other services' platform still starts without it."""
    return importlib.util.find_spec("modelyard_deploy.__main__") is not None


def _check_running(process: Popen[bytes], log_path: Path) -> None:
    if process.poll() is not None:
        tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
        raise RuntimeError(f"{log_path.stem} exited with {process.returncode}:\n{tail}")


def _serving(process: Popen[bytes], log_path: Path, open_channel: Callable[[], grpc.aio.Channel]) -> bool:
    _check_running(process, log_path)
    return asyncio.run(_answers_serving(open_channel))


async def _answers_serving(open_channel: Callable[[], grpc.aio.Channel]) -> bool:
    async with open_channel() as ch:
        try:
            await wait_until_serving(ch, timeout_s=1.0)
        except (TimeoutError, grpc.aio.AioRpcError):
            return False
    return True


async def _edge_online(ch: grpc.aio.Channel, agent: EdgeAgent) -> bool:
    async with ch:
        try:
            detail = await deploy_pb2_grpc.DeployServiceStub(ch).GetEdgeServer(
                deploy_pb2.EdgeServerRef(server_id=agent.server_id, org_id=agent.org_id), timeout=2.0
            )
        except grpc.aio.AioRpcError:
            return False
    return bool(detail.server.online)


async def _lists_trainer(ch: grpc.aio.Channel, trainer_id: str) -> bool:
    async with ch:
        try:
            reply = await jobs_pb2_grpc.QueryServiceStub(ch).ListTrainers(
                jobs_pb2.ListTrainersRequest(), timeout=2.0
            )
        except grpc.aio.AioRpcError:
            return False
    return any(t.trainer_id == trainer_id and t.alive for t in reply.trainers)
