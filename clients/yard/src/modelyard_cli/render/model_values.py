"""Names of registry-svc's values as people type and read them: `released`, `val`, `28×28×1`."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from modelyard.v1 import registry_pb2


class ModelStatusName(StrEnum):
    """The lifecycle states of a model version (`--status`)."""

    draft = "draft"
    testing = "testing"
    approved = "approved"
    released = "released"
    deprecated = "deprecated"


class SplitName(StrEnum):
    """The held-out splits an evaluation runs on (`--split`)."""

    val = "val"
    test = "test"


def status_value(name: ModelStatusName) -> str:
    """`released` → "MODEL_STATUS_RELEASED" (protobuf takes enum values by name)."""
    return f"MODEL_STATUS_{name.value.upper()}"


def status_name(value: int) -> str:
    """MODEL_STATUS_TESTING → `testing`."""
    return registry_pb2.ModelStatus.Name(value).removeprefix("MODEL_STATUS_").lower()


def shape_text(shape: Iterable[int]) -> str:
    """[28, 28, 1] → `28×28×1`; `-` when there is none."""
    return "×".join(str(size) for size in shape) or "-"


def semver_label(version: registry_pb2.ModelVersion) -> str:
    """`digits 1.2.0`: the module and the version's number."""
    return f"{version.ai_module} {version.semantic_version}"
