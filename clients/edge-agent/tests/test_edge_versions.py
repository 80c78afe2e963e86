"""The versions folder: whole installs, atomic switches, the previous version kept, pruning, and the
agent loading (after verifying) what `active` names when it starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from edge_support import MODULE, OTHER_KEY, REGISTRY_KEY, model_bytes, version

from modelyard_artifacts.manifest import ManifestVerifier
from modelyard_edge.agent import EdgeAgent
from modelyard_edge.config import AgentConfig
from modelyard_edge.versions import MANIFEST_FILE, MODEL_FILE, VersionRefused, VersionsHome

VERIFIER = ManifestVerifier([REGISTRY_KEY.public_key])


def install(home: VersionsHome, version_id: str, seed: int = 0) -> None:
    registered = version(version_id, model_bytes(seed))
    downloaded = home.download_target(registered.sha256)
    downloaded.write_bytes(registered.data)
    home.unpack(version_id, downloaded, registered.signed.to_json())


def test_unpack_moves_the_download_into_a_whole_version_folder(tmp_path: Path) -> None:
    home = VersionsHome(tmp_path)
    install(home, "v1")
    assert sorted(p.name for p in (tmp_path / "versions" / "v1").iterdir()) == [MANIFEST_FILE, MODEL_FILE]
    assert list((tmp_path / "downloads").iterdir()) == []
    assert [p.name for p in (tmp_path / "versions").iterdir()] == ["v1"]  # no staging folder left
    assert home.verify("v1", VERIFIER).manifest.version_id == "v1"


def test_switch_replaces_active_keeps_previous_and_prunes_older_versions(tmp_path: Path) -> None:
    home = VersionsHome(tmp_path)
    install(home, "v1", seed=1)
    assert home.switch(MODULE, "v1") is None
    install(home, "v2", seed=2)
    assert home.switch(MODULE, "v2") == "v1"
    assert (home.active_version(MODULE), home.previous_version(MODULE)) == ("v2", "v1")
    assert os.readlink(tmp_path / "modules" / MODULE / "active") == "../../versions/v2"
    assert (tmp_path / "modules" / MODULE / "active" / MODEL_FILE).is_file()
    install(home, "v3", seed=3)
    assert home.switch(MODULE, "v3") == "v2"
    assert (home.active_version(MODULE), home.previous_version(MODULE)) == ("v3", "v2")
    assert sorted(p.name for p in (tmp_path / "versions").iterdir()) == ["v2", "v3"]
    assert [p.name for p in (tmp_path / "modules" / MODULE).iterdir() if p.name.startswith(".")] == []


def test_rolling_back_to_previous_swaps_the_two(tmp_path: Path) -> None:
    home = VersionsHome(tmp_path)
    install(home, "v1")
    home.switch(MODULE, "v1")
    install(home, "v2", seed=2)
    home.switch(MODULE, "v2")
    assert home.switch(MODULE, "v1") == "v2"
    assert (home.active_version(MODULE), home.previous_version(MODULE)) == ("v1", "v2")
    assert sorted(p.name for p in (tmp_path / "versions").iterdir()) == ["v1", "v2"]


def test_a_linked_version_is_never_removed(tmp_path: Path) -> None:
    home = VersionsHome(tmp_path)
    install(home, "v1")
    home.switch(MODULE, "v1")
    home.remove_version("v1")
    assert home.has_version("v1")


class TestVerification:
    def test_altered_bytes_are_refused(self, tmp_path: Path) -> None:
        home = VersionsHome(tmp_path)
        install(home, "v1")
        with (tmp_path / "versions" / "v1" / MODEL_FILE).open("ab") as file:
            file.write(b"x")
        with pytest.raises(VersionRefused, match=r"fails verification.*expected"):
            home.verify("v1", VERIFIER)

    def test_a_manifest_signed_by_an_unpinned_key_is_refused(self, tmp_path: Path) -> None:
        home = VersionsHome(tmp_path)
        registered = version("v1", model_bytes(), key=OTHER_KEY)
        target = home.download_target(registered.sha256)
        target.write_bytes(registered.data)
        home.unpack("v1", target, registered.signed.to_json())
        with pytest.raises(VersionRefused, match="not pinned here"):
            home.verify("v1", VERIFIER)

    def test_the_manifest_of_another_version_is_refused(self, tmp_path: Path) -> None:
        home = VersionsHome(tmp_path)
        registered = version("v1", model_bytes(), manifest_version_id="v9")
        target = home.download_target(registered.sha256)
        target.write_bytes(registered.data)
        home.unpack("v1", target, registered.signed.to_json())
        with pytest.raises(VersionRefused, match="carries the manifest of version v9"):
            home.verify("v1", VERIFIER)

    @pytest.mark.parametrize("name", ["..", "a/b", ".hidden", ""])
    def test_ids_that_could_leave_the_home_are_refused(self, tmp_path: Path, name: str) -> None:
        with pytest.raises(VersionRefused, match="cannot name a folder"):
            VersionsHome(tmp_path).version_folder(name)


def _config(home: Path) -> AgentConfig:
    return AgentConfig("edge-1", home, "token", (REGISTRY_KEY.public_text(),))


async def test_a_restarted_agent_serves_the_active_version(tmp_path: Path) -> None:
    home = VersionsHome(tmp_path)
    install(home, "v1")
    home.switch(MODULE, "v1")
    install(home, "v2", seed=2)
    home.switch(MODULE, "v2")
    agent = EdgeAgent(_config(tmp_path))
    await agent.load_active()
    assert {module: model.version_id for module, model in agent.running().items()} == {MODULE: "v2"}
    outputs = await agent.predict(MODULE, [[10.0, 5.0, 3.0], [12.0, 4.0, 2.0]])
    assert len(outputs) == 2
    assert set(outputs) <= {"cat", "dog", "horse"}


async def test_a_restarted_agent_does_not_serve_an_altered_active_version(tmp_path: Path) -> None:
    home = VersionsHome(tmp_path)
    install(home, "v1")
    home.switch(MODULE, "v1")
    (tmp_path / "versions" / "v1" / MODEL_FILE).write_bytes(model_bytes(seed=5))  # same size, other bytes
    agent = EdgeAgent(_config(tmp_path))
    await agent.load_active()
    assert agent.running() == {}


async def test_a_restarted_agent_falls_back_to_the_previous_version(tmp_path: Path) -> None:
    home = VersionsHome(tmp_path)
    install(home, "v1")
    home.switch(MODULE, "v1")
    install(home, "v2", seed=2)
    home.switch(MODULE, "v2")
    (tmp_path / "versions" / "v2" / MODEL_FILE).write_bytes(b"rotten")
    agent = EdgeAgent(_config(tmp_path))
    await agent.load_active()
    assert {module: model.version_id for module, model in agent.running().items()} == {MODULE: "v1"}
    assert (home.active_version(MODULE), home.previous_version(MODULE)) == ("v1", "v2")
