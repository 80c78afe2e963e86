"""The read models' tables (one schema, rebuilt from the logs into a fresh schema when needed)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.db import checked_schema, create_schema_tables
from modelyard_job.projections import early_reports

_DDL = (
    """CREATE TABLE IF NOT EXISTS {s}.jobs (
        job_id text PRIMARY KEY, org_id text NOT NULL, name text NOT NULL, ai_module text NOT NULL,
        family text NOT NULL, dataset_uri text NOT NULL, hyperparameters jsonb NOT NULL,
        priority int NOT NULL, state text NOT NULL, attempt int NOT NULL, created_by text NOT NULL,
        request_id text, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
        queued_at timestamptz, version bigint NOT NULL,
        trainer_id text, dispatch_id text, lease_expires_at timestamptz, started bool NOT NULL DEFAULT false,
        device text, epochs_done int NOT NULL DEFAULT 0, epochs_total int NOT NULL DEFAULT 0,
        steps_per_epoch int NOT NULL DEFAULT 0, epoch int NOT NULL DEFAULT 0, step bigint NOT NULL DEFAULT 0,
        progress double precision, eta_s double precision, loss double precision,
        samples_per_s double precision, checkpoint_uri text, artifact_uri text, artifact_sha256 text,
        failure_reason text, kind text NOT NULL DEFAULT 'training', description text NOT NULL DEFAULT '',
        base_version_id text, model_version_id text, evaluation_id text, output_version_id text)""",
    # Views made before evaluation runs and fine-tuning (issue 12) gain their columns in place.
    "ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'training'",
    "ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS description text NOT NULL DEFAULT ''",
    *(
        f"ALTER TABLE {{s}}.jobs ADD COLUMN IF NOT EXISTS {column} text"
        for column in ("base_version_id", "model_version_id", "evaluation_id", "output_version_id")
    ),
    # When training first started and when the job ended (issue 15: started, completed, elapsed).
    "ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS started_at timestamptz",
    "ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS completed_at timestamptz",
    # What a dispatched run is doing before and as it trains (fetching, loading_data, training …).
    "ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS phase text",
    "ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS phase_message text",
    # How many samples the current attempt trains on (TrainingStarted): estimates scale by it.
    "ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS train_samples int",
    "CREATE INDEX IF NOT EXISTS jobs_by_state ON {s}.jobs (state, queued_at)",
    "CREATE INDEX IF NOT EXISTS jobs_by_org ON {s}.jobs (org_id, created_at DESC, job_id DESC)",
    "CREATE INDEX IF NOT EXISTS jobs_by_created ON {s}.jobs (created_at DESC, job_id DESC)",
    """CREATE TABLE IF NOT EXISTS {s}.epoch_metrics (
        job_id text NOT NULL, attempt int NOT NULL, epoch int NOT NULL, dispatch_id text NOT NULL,
        train_loss double precision NOT NULL, val_loss double precision NOT NULL,
        val_accuracy double precision, metrics jsonb NOT NULL, samples_per_s double precision NOT NULL,
        duration_s double precision NOT NULL, gpu_utilization_pct double precision, gpu_memory_bytes bigint,
        recorded_at timestamptz NOT NULL, PRIMARY KEY (job_id, attempt, epoch))""",
    """CREATE TABLE IF NOT EXISTS {s}.job_timeline (
        source text NOT NULL, position bigint NOT NULL, job_id text NOT NULL, type text NOT NULL,
        occurred_at timestamptz NOT NULL, envelope text NOT NULL, PRIMARY KEY (source, position))""",
    "CREATE INDEX IF NOT EXISTS job_timeline_by_job ON {s}.job_timeline (job_id, occurred_at)",
    """CREATE TABLE IF NOT EXISTS {s}.trainers (
        trainer_id text PRIMARY KEY, slots_total int NOT NULL, gpus jsonb NOT NULL,
        registered_at timestamptz NOT NULL, lost bool NOT NULL DEFAULT false, lost_at timestamptz)""",
    # The registry version each training job became (ModelVersionRegistered), in whichever order the
    # registry's and job-svc's logs are applied.
    "CREATE TABLE IF NOT EXISTS {s}.job_outputs (job_id text PRIMARY KEY, version_id text NOT NULL)",
    # The lines trainers logged per run (training_logs.py): `cursor` orders them as the trainers' log does;
    # reads go by dispatch, so lines a trainer wrote naming another's job are never even scanned.
    """CREATE TABLE IF NOT EXISTS {s}.job_logs (
        cursor bigint PRIMARY KEY, job_id text NOT NULL, attempt int NOT NULL, dispatch_id text NOT NULL,
        trainer_id text NOT NULL, at timestamptz NOT NULL, level text NOT NULL, logger text NOT NULL,
        message text NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS job_logs_by_dispatch ON {s}.job_logs (dispatch_id, cursor)",
    *early_reports.DDL,  # after jobs: views made before it are backfilled from their rows
)


async def create_view_tables(conn: AsyncConnection, schema: str) -> None:
    """Create the schema and every read-model table in it if missing."""
    await create_schema_tables(conn, schema, _DDL)


def changes_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel on which the views announce what changed (watchers, dispatcher)."""
    return f"{checked_schema(schema)}_changed"
