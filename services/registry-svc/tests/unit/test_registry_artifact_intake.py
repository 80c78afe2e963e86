"""Artifact intake refuses what a hostile JobCompleted might name, and takes a real model file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch

from modelyard_blobs import BlobIntegrityError, LocalFolderBlobStore
from modelyard_registry.app.artifact_intake import ArtifactIntake, ArtifactRefused

SHA = "0" * 64


def _model_file(path: Path) -> tuple[Path, str]:
    config = {
        "family": "tabular_classifier",
        "hyperparameters": {},
        "input_shape": [3],
        "class_labels": ["a", "b"],
        "feature_names": ["x", "y", "z"],
        "scaling": {"kind": "tabular"},
    }
    torch.save(
        {"format": "modelyard.model/1", "state_dict": {}, "config": config, "metrics": {"acc": 0.5}}, path
    )
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, ArtifactIntake]:
    runs = tmp_path / "runs"
    runs.mkdir()
    return runs, ArtifactIntake(LocalFolderBlobStore(tmp_path / "blobs"), [runs], 10**6)


async def test_a_model_file_in_the_runs_folder_is_copied_and_described(
    roots: tuple[Path, ArtifactIntake],
) -> None:
    runs, intake = roots
    path, sha = _model_file(runs / "model.pt")

    stored = await intake.take(path.as_uri(), sha, path.stat().st_size)

    assert stored.sha256 == sha
    assert stored.config.class_names == ["a", "b"]
    assert stored.config.feature_count == 3
    assert stored.metrics == {"acc": 0.5}


@pytest.mark.parametrize("where", ["outside", "dotdot", "symlink", "folder", "fifo", "missing", "http"])
async def test_anything_but_a_regular_file_inside_the_runs_folder_is_refused(
    roots: tuple[Path, ArtifactIntake], tmp_path: Path, where: str
) -> None:
    runs, intake = roots
    secret = tmp_path / "secret.pt"
    secret.write_bytes(b"not for you")
    uri = {
        "outside": secret.as_uri(),
        "dotdot": (runs / ".." / "secret.pt").as_uri(),
        "folder": runs.as_uri(),
        "missing": (runs / "nope.pt").as_uri(),
        "http": "http://evil.example/model.pt",
    }.get(where)
    if where == "symlink":
        (runs / "link.pt").symlink_to(secret)
        uri = (runs / "link.pt").as_uri()
    if where == "fifo":
        os.mkfifo(runs / "pipe.pt")
        uri = (runs / "pipe.pt").as_uri()
    assert uri is not None

    with pytest.raises(ArtifactRefused):
        await intake.take(uri, SHA, 10)


async def test_a_file_whose_hash_differs_from_the_reported_one_is_refused(
    roots: tuple[Path, ArtifactIntake],
) -> None:
    runs, intake = roots
    path, _ = _model_file(runs / "model.pt")

    with pytest.raises(BlobIntegrityError):
        await intake.take(path.as_uri(), SHA, path.stat().st_size)


async def test_a_file_that_is_not_a_model_is_refused(roots: tuple[Path, ArtifactIntake]) -> None:
    runs, intake = roots
    path = runs / "model.pt"
    path.write_bytes(b"#!/bin/sh\necho pwned\n")

    with pytest.raises(ArtifactRefused, match="not a readable model file"):
        await intake.take(path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest(), 20)
