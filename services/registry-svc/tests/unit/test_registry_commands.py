"""RegistryCommands on the in-memory store: racing approvals, a concurrent change elsewhere, signing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from registry_builders import MODULE, NOW, ORG, registration, report

from modelyard_artifacts.manifest import ManifestSigner, ManifestVerifier, SignedManifest
from modelyard_blobs import LocalFolderBlobStore
from modelyard_events.caller import Caller
from modelyard_events.envelope import Actor, EventEnvelope
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.plans import PLANS
from modelyard_events.schemas.registry import MODULE_STREAM, module_stream_id
from modelyard_events.signing import Ed25519Key
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_registry.app.artifact_intake import ArtifactIntake
from modelyard_registry.app.commands import RegistryCommands
from modelyard_registry.domain.module import ModelModule

KEY = Ed25519Key.generate()


class InterleavingStore(InMemoryEventStore):
    """Every read yields to the loop, so two commands both read before either appends."""

    async def read_stream(
        self, stream_id: str, after_version: int = 0, *, limit: int | None = None
    ) -> list[EventEnvelope]:
        events = await super().read_stream(stream_id, after_version, limit=limit)
        await asyncio.sleep(0)
        return events


def caller(subject: str) -> Caller:
    return Caller(Actor(subject=subject, roles=("super_admin",)))


async def _commands(tmp_path: Path) -> RegistryCommands:
    store = InterleavingStore()

    async def locate(version_id: str) -> tuple[str, str]:
        return ORG, MODULE

    intake = ArtifactIntake(LocalFolderBlobStore(tmp_path), [tmp_path], 10**6)
    commands = RegistryCommands(
        store, intake, locate, ManifestSigner(KEY), {}, lambda org: PLANS["enterprise"], lambda: NOW
    )
    module = ModelModule(ORG, MODULE)
    events = []
    for job in ("j1", "j2"):
        new = module.register(registration(job))
        events += new
        for event in new:
            module = module.apply(event)
        asked = module.request_evaluation(f"v-{job}", f"e-{job}", f"eval-{job}", "dataset://x", "val", "bob")
        module = module.apply(asked[0])
        done = module.record_evaluation(f"eval-{job}", report())
        module = module.apply(done[0])
        events += asked + done
    await store.append(
        MODULE_STREAM, module_stream_id(ORG, MODULE), 0, events, caller("registry").context_for(ORG)
    )
    return commands


async def test_two_approvals_racing_one_wins_and_the_other_is_aborted(tmp_path: Path) -> None:
    commands = await _commands(tmp_path)

    results = await asyncio.gather(
        commands.approve("v-j1", caller("carol")),
        commands.approve("v-j1", caller("dave")),
        return_exceptions=True,
    )

    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1
    assert len(lost) == 1
    assert isinstance(lost[0], ConcurrencyConflict)
    assert "changed while this command was decided (it is now approved)" in str(lost[0])


async def test_a_concurrent_change_to_another_version_is_retried_not_aborted(tmp_path: Path) -> None:
    commands = await _commands(tmp_path)

    first, second = await asyncio.gather(
        commands.approve("v-j1", caller("carol")), commands.approve("v-j2", caller("dave"))
    )

    assert (first.status, second.status) == ("approved", "approved")
    module = await commands.load_module(ORG, MODULE)
    assert {v.approval.approved_by for v in module.versions.values() if v.approval} == {"carol", "dave"}


async def test_the_approval_carries_a_manifest_signed_with_the_registry_key(tmp_path: Path) -> None:
    commands = await _commands(tmp_path)

    approved = await commands.approve("v-j1", caller("carol"))

    assert approved.approval is not None
    signed = SignedManifest.from_json(approved.approval.manifest.manifest_json.encode())
    manifest = ManifestVerifier([KEY.public_key]).verify(signed)
    assert (manifest.version_id, manifest.approved_by, manifest.artifact_sha256) == (
        "v-j1",
        "carol",
        "a" * 64,
    )
    other = ManifestVerifier([Ed25519Key.generate().public_key])
    with pytest.raises(ValueError, match="key"):
        other.verify(signed)


async def test_a_rollback_is_aborted_when_the_current_release_changed_meanwhile(tmp_path: Path) -> None:
    commands = await _commands(tmp_path)
    for version_id, approver in (("v-j1", "carol"), ("v-j2", "dave")):
        await commands.approve(version_id, caller(approver))
        await commands.release(version_id, "production", version_id, caller(approver))

    # 1.0.1 is deprecated while a rollback to 1.0.0, decided on the old picture, is in flight.
    results = await asyncio.gather(
        commands.deprecate("v-j2", "withdrawn", caller("dave")),
        commands.rollback("v-j1", "production", "bad", caller("carol")),
        return_exceptions=True,
    )

    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], ConcurrencyConflict)
    assert "current release in production changed to nothing" in str(results[1])
    module = await commands.load_module(ORG, MODULE)
    assert module.get("v-j2").status_reason == "withdrawn"  # not the rollback's reason
    assert module.current == {}
