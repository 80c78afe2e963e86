"""Builders of the worker tests: job events in envelopes, and settings that need no environment."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from modelyard_events.envelope import GENESIS_HASH, Actor, DomainEvent, EventEnvelope, payload_of
from modelyard_events.schemas.jobs import JOB_STREAM, JobDispatched
from modelyard_events.testing.signing import TEST_SIGNER
from modelyard_grpc.testing import TEST_TOKEN_PUBLIC_KEYS
from modelyard_trainer.config import TrainerSettings

TRAINER_ID = "trainer-a"


def dispatch_of(
    job_id: str = "job-1", attempt: int = 1, trainer_id: str = TRAINER_ID, **fields: Any
) -> JobDispatched:
    """A digits dispatch (the dataset URI is a placeholder unless given)."""
    values: dict[str, Any] = {
        "dispatch_id": f"dsp-{uuid.uuid4().hex[:12]}",
        "lease_expires_at": datetime.now(UTC) + timedelta(seconds=30),
        "family": "image_classifier",
        "dataset_uri": "file:///data/digits.npz",
        "hyperparameters": {"epochs": 1},
    }
    values.update(fields)
    return JobDispatched(job_id=job_id, attempt=attempt, trainer_id=trainer_id, **values)


def envelope_of(
    event: DomainEvent, org_id: str | None = "org-1", correlation_id: str = "corr-1"
) -> EventEnvelope:
    """`event` as job-svc's relay would publish it (hashes are placeholders)."""
    return EventEnvelope(
        event_id=uuid.uuid4(),
        stream_type=JOB_STREAM,
        stream_id=str(getattr(event, "job_id", "job-1")),
        stream_version=1,
        position=1,
        type=event.type_name,
        schema_version=event.schema_version,
        occurred_at=datetime.now(UTC),
        actor=Actor(subject="job-svc", roles=("super_admin",)),
        org_id=org_id,
        correlation_id=correlation_id,
        causation_id=None,
        data=payload_of(event),
        prev_hash=GENESIS_HASH,
        hash=GENESIS_HASH,
    )


def settings_for(root: Path, **values: Any) -> TrainerSettings:
    """CPU settings for unit tests, with placeholder servers (nothing is contacted)."""
    defaults: dict[str, Any] = {
        "database_url": "postgresql://localhost/none",
        "kafka_bootstrap_servers": "localhost:9",
        "token_public_keys": TEST_TOKEN_PUBLIC_KEYS,
        "trainer_id": TRAINER_ID,
        "trainer_root": root,
        "trainer_device": "cpu",
        "progress_interval_s": 0.05,
        "allow_file_datasets": True,  # these tests train on file:// data
        "event_signing_key": TEST_SIGNER.private_text(),
        "event_public_keys": json.dumps({"job": [TEST_SIGNER.public_text()]}),
        "token_file": root / "own.token",  # serve's own token (never read by these tests)
    }
    return TrainerSettings(**(defaults | values))
