"""`make demo`, part 7: the released model goes to three edge agents, driven with `yard deploy`.

Three local edge agents (real `yard edge-agent` processes, each with its own edge token and the
registry's public key pinned) register with deploy-svc. The released version rolls out in two waves:
a canary, then the other two, each server with its progress bar. A fourth agent is then sent the
same version while the registry's stored copy has one flipped bit: it refuses the artifact (its
SHA-256 does not match the signed manifest) and keeps serving nothing rather than a tampered model.
Last, a retrained version is released and rolled out while edge-3 pins another registry key: the
second wave fails on edge-3, the rollout halts, and the servers it changed go back to the version
they ran before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from modelyard.v1 import registry_pb2, registry_pb2_grpc
from modelyard_devstack.platform import EdgeAgent, Platform
from modelyard_events.signing import Ed25519Key
from modelyard_grpc import channel

Yard = Callable[..., int]
SERVERS = ("edge-1", "edge-2", "edge-3")
# The retrained model is compared with the running one on random probe inputs, where two honest
# models may well disagree: the demo's limits leave agreement out and allow slower loading.
LENIENT_HEALTH = ("--min-agreement", "0", "--max-load-time-ratio", "100", "--max-p95-latency-ratio", "100")


def walk_edge(
    running: Platform, org: str, yard: Yard, released_version_id: str, release_retrained: Callable[[], str]
) -> None:
    """Roll out, refuse a tampered artifact, halt and roll back (see the module's docstring)."""
    if not running.deploy_target:
        print("\n7. Edge rollout: skipped (deploy-svc is not installed in this checkout)")
        return
    print(f"\n7. Edge rollout: deploy-svc on {running.deploy_target}; three edge agents register")
    agents = [running.start_edge_agent(server, org) for server in SERVERS]
    _await_online(running, agents)
    yard("edge", "list", "--org", org)

    print("\n   the released version rolls out in two waves: a canary, then the other two servers")
    server_args = [arg for server in SERVERS for arg in ("--server", server)]
    yard("deploy", "start", released_version_id, *server_args, "--waves", "1,2", "--reason",
         "first digits reader on the fleet", "--org", org, "--wait")  # fmt: skip
    yard("edge", "list", "--org", org)

    print("\n   one flipped bit in the registry's stored copy, and a new server edge-4 refuses it:")
    edge_4 = running.start_edge_agent("edge-4", org)
    _await_online(running, [edge_4])
    with _tampered_blob(running, released_version_id):
        retry_once = ("--max-retries", "1", "--backoff-s", "1")
        yard("deploy", "start", released_version_id, "--server", "edge-4", *retry_once,
             "--reason", "a fourth server", "--org", org, "--wait", check=False)  # fmt: skip
    yard("deploy", "deployments", "--server", "edge-4", "--org", org)
    yard("edge", "show", "edge-4", "--org", org)
    running.stop_edge_agent(edge_4)

    print("\n   a retrained version is released; meanwhile edge-3 pins another registry key:")
    retrained = release_retrained()
    running.stop_edge_agent(agents[2])
    agents[2] = running.start_edge_agent(
        "edge-3", org, home=agents[2].home, registry_public_keys=[Ed25519Key.generate().public_text()]
    )
    _await_online(running, [agents[2]])
    print("\n   its rollout halts when the second wave fails on edge-3, and rolls the changed servers back:")
    yard("deploy", "start", retrained, *server_args, "--waves", "1,2", "--failure-threshold", "0",
         "--rollback-on-failure", *LENIENT_HEALTH, "--reason", "retrained reader", "--org", org,
         "--wait", check=False)  # fmt: skip
    yard("edge", "list", "--org", org)
    yard("fleet", "status", "--org", org)
    for agent in agents:
        running.stop_edge_agent(agent)


def _await_online(running: Platform, agents: list[EdgeAgent]) -> None:
    async def all_online() -> None:
        await asyncio.gather(*(running.edge_agent_online(agent) for agent in agents))

    asyncio.run(all_online())


@contextmanager
def _tampered_blob(running: Platform, version_id: str) -> Iterator[None]:
    """One bit of the version's artifact flipped in registry-svc's local store for the block."""
    sha256 = asyncio.run(_artifact_sha256(running, version_id))
    path = Path(running.workdir) / "registry-blobs" / sha256[:2] / sha256
    original = path.read_bytes()
    mode = path.stat().st_mode
    path.chmod(0o600)
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 1
    path.write_bytes(bytes(tampered))
    try:
        yield
    finally:
        path.write_bytes(original)
        path.chmod(mode)


async def _artifact_sha256(running: Platform, version_id: str) -> str:
    async with channel(running.registry_target, running.token(roles=("auditor",))) as ch:
        version = await registry_pb2_grpc.RegistryServiceStub(ch).GetVersion(
            registry_pb2.ModelVersionRef(version_id=version_id)
        )
    return str(version.artifact_sha256)
