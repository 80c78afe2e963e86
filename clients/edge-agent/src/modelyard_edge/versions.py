"""The agent's home on disk: downloads in progress, installed versions, and each module's active one.

    <home>/downloads/<sha256>.part       a download in progress (resumed with Range after a restart)
    <home>/versions/<version_id>/        model.pt + manifest.json (the registry's signed manifest)
    <home>/modules/<ai_module>/active    symlink → ../../versions/<version_id>
    <home>/modules/<ai_module>/previous  symlink → the version `active` replaced (instant local rollback)

A version folder appears whole or not at all (written under a temporary name, then renamed), and a
switch replaces the `active` symlink with `os.replace`, which is atomic on POSIX: a crash leaves the
old or the new version active, never neither. Per module the active and previous versions stay on
disk; older ones are deleted. Every function here blocks: the agent calls them in a thread.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from modelyard_artifacts.manifest import (
    ArtifactManifest,
    ManifestVerifier,
    SignedManifest,
    verify_artifact_file,
)

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
MANIFEST_FILE = "manifest.json"
_ACTIVE, _PREVIOUS = "active", "previous"


class VersionRefused(Exception):
    """An installed or downloaded version that must not be used; the message says why."""


@dataclass(frozen=True, slots=True)
class InstalledVersion:
    """A verified version folder and what its signed manifest says about it."""

    path: Path
    manifest: ArtifactManifest

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE


class VersionsHome:
    """The folders of one agent's home (created on first use)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.downloads = home / "downloads"
        self.versions = home / "versions"
        self.modules = home / "modules"
        for folder in (self.downloads, self.versions, self.modules):
            folder.mkdir(parents=True, exist_ok=True)

    def download_target(self, sha256: str) -> Path:
        """Where a download of these bytes ends (download_artifact writes `<this>.part` meanwhile)."""
        return self.downloads / sha256

    def part_file(self, sha256: str) -> Path:
        """The partial download of these bytes, if an earlier run left one."""
        return self.downloads / f"{sha256}.part"

    def version_folder(self, version_id: str) -> Path:
        return self.versions / _safe_name(version_id)

    def has_version(self, version_id: str) -> bool:
        folder = self.version_folder(version_id)
        return (folder / MODEL_FILE).is_file() and (folder / MANIFEST_FILE).is_file()

    def unpack(self, version_id: str, model_file: Path, signed_manifest_json: bytes) -> Path:
        """Move the downloaded `model_file` and its manifest into the version's folder, whole: both are
        written to a temporary folder, then renamed (replacing a damaged earlier copy)."""
        target = self.version_folder(version_id)
        staging = self.versions / f".unpacking-{target.name}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            os.replace(model_file, staging / MODEL_FILE)
            (staging / MANIFEST_FILE).write_bytes(signed_manifest_json)
            _fsync_folder(staging)
            if target.exists():
                trash = self.versions / f".replaced-{target.name}-{uuid.uuid4().hex[:8]}"
                os.replace(target, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(staging, target)
            _fsync_folder(self.versions)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def verify(self, version_id: str, verifier: ManifestVerifier) -> InstalledVersion:
        """The version's folder when its manifest verifies under a pinned key, names this version and
        the file has the manifest's size and SHA-256; VersionRefused saying why otherwise."""
        folder = self.version_folder(version_id)
        try:
            signed = SignedManifest.from_json((folder / MANIFEST_FILE).read_bytes())
            manifest = verify_artifact_file(folder / MODEL_FILE, signed, verifier)
        except (OSError, ValueError) as error:  # MalformedManifest, ManifestSignatureError, ArtifactMismatch
            raise VersionRefused(
                f"the installed copy of version {version_id} fails verification: {error}"
            ) from None
        if manifest.version_id != version_id:
            raise VersionRefused(
                f"the installed copy of version {version_id} carries the manifest of version "
                f"{manifest.version_id}"
            )
        return InstalledVersion(folder, manifest)

    def stored(self, version_id: str) -> InstalledVersion:
        """An installed version with the manifest it holds, not verified again (the running version,
        verified when it was installed or loaded); OSError or MalformedManifest when unreadable."""
        folder = self.version_folder(version_id)
        return InstalledVersion(
            folder, SignedManifest.from_json((folder / MANIFEST_FILE).read_bytes()).manifest
        )

    def remove_version(self, version_id: str) -> None:
        """Delete a version's folder unless a module's active or previous link names it."""
        if version_id in self._linked_versions():
            return
        shutil.rmtree(self.version_folder(version_id), ignore_errors=True)

    # ---- per module: active and previous ----

    def active_version(self, ai_module: str) -> str | None:
        return self._link_target(ai_module, _ACTIVE)

    def previous_version(self, ai_module: str) -> str | None:
        return self._link_target(ai_module, _PREVIOUS)

    def active_modules(self) -> dict[str, str]:
        """Every module with an active version: ai_module → version_id."""
        found: dict[str, str] = {}
        for folder in sorted(self.modules.iterdir()):
            version = self.active_version(folder.name)
            if version is not None:
                found[folder.name] = version
        return found

    def switch(self, ai_module: str, version_id: str) -> str | None:
        """Make `version_id` the module's active version atomically; returns the version it replaced
        (now `previous`). Then deletes the module's versions older than those two."""
        folder = self.modules / _safe_name(ai_module)
        folder.mkdir(parents=True, exist_ok=True)
        replaced = self.active_version(ai_module)
        if replaced == version_id:
            return None
        if replaced is not None:
            _replace_link(folder / _PREVIOUS, replaced)
        _replace_link(folder / _ACTIVE, version_id)
        _fsync_folder(folder)
        self.prune(ai_module)
        return replaced

    def prune(self, ai_module: str) -> list[str]:
        """Delete the module's versions other than its active and previous ones; returns their ids."""
        keep = {self.active_version(ai_module), self.previous_version(ai_module)}
        removed = []
        for folder in sorted(self.versions.iterdir()):
            if folder.name.startswith(".") or folder.name in keep:
                continue
            if _module_of(folder) == ai_module:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
        if removed:
            log.info("module %s: removed old version(s) %s", ai_module, ", ".join(removed))
        return removed

    def _link_target(self, ai_module: str, name: str) -> str | None:
        link = self.modules / _safe_name(ai_module) / name
        try:
            return Path(os.readlink(link)).name
        except OSError:
            return None

    def _linked_versions(self) -> set[str]:
        linked = set()
        for folder in self.modules.iterdir():
            for name in (_ACTIVE, _PREVIOUS):
                version = self._link_target(folder.name, name)
                if version is not None:
                    linked.add(version)
        return linked


def _replace_link(link: Path, version_id: str) -> None:
    temporary = link.with_name(f".{link.name}-{uuid.uuid4().hex[:8]}")
    os.symlink(Path("..") / ".." / "versions" / _safe_name(version_id), temporary)
    os.replace(temporary, link)


def _module_of(folder: Path) -> str | None:
    try:
        return SignedManifest.from_json((folder / MANIFEST_FILE).read_bytes()).manifest.ai_module
    except (OSError, ValueError):
        return None


def _safe_name(name: str) -> str:
    """Ids name folders: refuse anything that could leave the home (ids are ULIDs or similar)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        raise VersionRefused(f"{name!r} cannot name a folder of the agent's home")
    return name


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
