"""The read models' tables (rebuilt by replay into a fresh schema, never migrated in place)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

STATES = ("unlabeled", "labeled", "verified", "rejected")


async def create_view_tables(conn: AsyncConnection, schema: str) -> None:
    """datasets (with live counts), samples (state, labels, consensus, quality), versions."""
    statements = [
        f"CREATE SCHEMA IF NOT EXISTS {schema}",
        f"""CREATE TABLE IF NOT EXISTS {schema}.datasets (
            dataset_id text PRIMARY KEY, org_id text NOT NULL, name text NOT NULL,
            ai_module text NOT NULL, environment text NOT NULL, task text NOT NULL,
            classes jsonb NOT NULL, created_by text NOT NULL, created_at timestamptz NOT NULL,
            samples bigint NOT NULL DEFAULT 0, bytes bigint NOT NULL DEFAULT 0,
            unlabeled bigint NOT NULL DEFAULT 0, labeled bigint NOT NULL DEFAULT 0,
            verified bigint NOT NULL DEFAULT 0, rejected bigint NOT NULL DEFAULT 0,
            latest_version int NOT NULL DEFAULT 0)""",
        # The lifecycle's columns (a views schema made before them gets them added).
        f"ALTER TABLE {schema}.datasets ADD COLUMN IF NOT EXISTS description text NOT NULL DEFAULT ''",
        f"ALTER TABLE {schema}.datasets ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'draft'",
        f"CREATE INDEX IF NOT EXISTS datasets_by_org ON {schema}.datasets (org_id, ai_module, environment)",
        f"""CREATE TABLE IF NOT EXISTS {schema}.samples (
            sample_id text PRIMARY KEY, dataset_id text NOT NULL, filename text NOT NULL,
            sha256 text NOT NULL, size_bytes bigint NOT NULL, media_type text NOT NULL,
            state text NOT NULL, labels jsonb NOT NULL DEFAULT '{{}}', consensus jsonb,
            agreement double precision NOT NULL DEFAULT 0, quality double precision NOT NULL DEFAULT 0,
            reviewed_by text NOT NULL DEFAULT '', review_reason text NOT NULL DEFAULT '',
            version bigint NOT NULL DEFAULT 0)""",
        # Provenance came later: a table made before it gains the columns (its rows had none to give).
        f"ALTER TABLE {schema}.samples ADD COLUMN IF NOT EXISTS source_camera_id text",
        f"ALTER TABLE {schema}.samples ADD COLUMN IF NOT EXISTS captured_at timestamptz",
        f"ALTER TABLE {schema}.samples ADD COLUMN IF NOT EXISTS metadata jsonb",
        f"CREATE INDEX IF NOT EXISTS samples_by_state ON {schema}.samples (dataset_id, state, sample_id)",
        f"CREATE INDEX IF NOT EXISTS samples_by_id ON {schema}.samples (dataset_id, sample_id)",
        f"CREATE INDEX IF NOT EXISTS samples_by_sha256 ON {schema}.samples (sha256)",
        f"""CREATE TABLE IF NOT EXISTS {schema}.versions (
            dataset_id text NOT NULL, version int NOT NULL, manifest_sha256 text NOT NULL,
            samples bigint NOT NULL, size_bytes bigint NOT NULL, ready boolean NOT NULL,
            published_by text NOT NULL, published_at timestamptz NOT NULL,
            PRIMARY KEY (dataset_id, version))""",
    ]
    for statement in statements:
        await conn.execute(text(statement))
