"""The views' rows as plain values, for the API (convert.py) and the app's read port."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.schemas.deploy import HealthLimits, HealthReport

T = TypeVar("T")
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class DeploymentRow:
    """One deployment as the views have it: the seed's columns and the rollout's."""

    deployment_id: str
    org_id: str
    server_id: str
    version_id: str
    ai_module: str
    semantic_version: str
    artifact_sha256: str
    artifact_size_bytes: int
    status: str
    phase: str
    progress_percent: int
    scheduled_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error_message: str
    retry_count: int
    max_retries: int
    backoff_base_s: float
    attempt: int
    retry_at: datetime | None
    deadline_at: datetime
    rollout_id: str | None
    wave: int | None
    kind: str
    previous_version_id: str | None
    health_limits: HealthLimits
    health: HealthReport | None
    created_by: str
    reason: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_mapping(cls, row: Mapping[Any, Any]) -> DeploymentRow:
        """From a `SELECT * FROM deployments` row."""
        values = {k: v for k, v in row.items() if k in cls.__dataclass_fields__}
        values["health_limits"] = HealthLimits.model_validate(row["health_limits"])
        values["health"] = None if row["health"] is None else HealthReport.model_validate(row["health"])
        return cls(**values)


@dataclass(frozen=True)
class ModelOnServer:
    """A module's model on a server (running or intended), with its number when the registry told it."""

    ai_module: str
    version_id: str
    semantic_version: str


@dataclass(frozen=True)
class ServerRow:
    """An edge server with what it runs, what it should run, and when it last spoke."""

    org_id: str
    server_id: str
    environment: str
    platform: str
    edge_version: str
    hostname: str
    registered_at: datetime
    running: list[ModelOnServer] = field(default_factory=list)
    intended: list[ModelOnServer] = field(default_factory=list)
    last_heartbeat_at: datetime | None = None
    free_disk_bytes: int = 0
    online: bool = False
    active_deployment: DeploymentRow | None = None

    @property
    def drift_reasons(self) -> list[str]:
        """One line per module whose running version is not the intended one."""
        running = {m.ai_module: m for m in self.running}
        reasons = []
        for want in self.intended:
            have = running.get(want.ai_module)
            if have is None or have.version_id != want.version_id:
                runs = "nothing" if have is None else _label(have)
                reasons.append(f"{want.ai_module}: runs {runs}, intended {_label(want)}")
        return reasons


@dataclass(frozen=True)
class WaveRow:
    """One wave of a rollout with its deployments counted by outcome."""

    wave: int
    size: int
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    in_progress: int = 0
    started: bool = False
    finished: bool = False
    passed: bool = False


@dataclass(frozen=True)
class RolloutRow:
    """A rollout and its waves' progress."""

    rollout_id: str
    org_id: str
    version_id: str
    ai_module: str
    semantic_version: str
    environment: str | None
    state: str
    kind: str
    wave_sizes: list[int]
    failure_threshold: float
    rollback_on_failure: bool
    scheduled_at: datetime
    deadline_s: int
    max_retries: int
    backoff_base_s: float
    health_limits: HealthLimits
    started_by: str
    reason: str
    halt_reason: str
    server_count: int
    current_wave: int
    release_rollback_of: str | None
    created_at: datetime
    finished_at: datetime | None
    waves: list[WaveRow] = field(default_factory=list)

    @classmethod
    def from_mapping(cls, row: Mapping[Any, Any], waves: list[WaveRow]) -> RolloutRow:
        """From a `SELECT * FROM rollouts` row and its counted waves."""
        values = {k: v for k, v in row.items() if k in cls.__dataclass_fields__}
        values["health_limits"] = HealthLimits.model_validate(row["health_limits"])
        values["wave_sizes"] = list(row["wave_sizes"])
        return cls(**values, waves=waves)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows and the token of the next one ("" at the end)."""

    rows: list[T]
    next_page_token: str


def page_window(page_size: int, page_token: str) -> tuple[int, int]:
    """(size, offset) of a requested page; InvalidArgument for a bad size or token."""
    if page_size < 0 or page_size > MAX_PAGE_SIZE:
        raise InvalidArgument(
            "page_size", f"page_size must be 0 (the default, {DEFAULT_PAGE_SIZE}) to {MAX_PAGE_SIZE}"
        )
    if page_token and (not page_token.isdigit() or len(page_token) > 9):
        raise InvalidArgument("page_token", "not a page token from a previous reply")
    return page_size or DEFAULT_PAGE_SIZE, int(page_token or 0)


def paged(rows: Sequence[T], size: int, offset: int) -> Page[T]:
    """A page from `size + 1` fetched rows (the extra one only says that more follow)."""
    return Page(list(rows[:size]), str(offset + size) if len(rows) > size else "")


def _label(model: ModelOnServer) -> str:
    return f"{model.semantic_version} ({model.version_id})" if model.semantic_version else model.version_id
