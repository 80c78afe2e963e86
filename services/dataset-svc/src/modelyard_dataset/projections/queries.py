"""Reads over the dataset views: counts, dataset lists, sample pages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_COUNTS = ("samples", "bytes", "unlabeled", "labeled", "verified", "rejected")


class DatasetViewReader:
    """Queries of the read models in `schema`."""

    def __init__(self, schema: str) -> None:
        self.schema = schema

    async def counts(self, conn: AsyncConnection, dataset_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """Per dataset: samples, bytes, unlabeled, labeled, verified, rejected (missing ones absent)."""
        rows = await conn.execute(
            text(
                f"SELECT dataset_id, {', '.join(_COUNTS)} FROM {self.schema}.datasets "
                "WHERE dataset_id = ANY(:ids)"
            ),
            {"ids": list(dataset_ids)},
        )
        return {row.dataset_id: {name: int(getattr(row, name)) for name in _COUNTS} for row in rows}

    async def created_at(self, conn: AsyncConnection, dataset_ids: Sequence[str]) -> dict[str, datetime]:
        """When each dataset was created (as far as the views have seen them)."""
        rows = await conn.execute(
            text(f"SELECT dataset_id, created_at FROM {self.schema}.datasets WHERE dataset_id = ANY(:ids)"),
            {"ids": list(dataset_ids)},
        )
        return {row.dataset_id: row.created_at for row in rows}

    async def published_at(self, conn: AsyncConnection, dataset_id: str, version: int) -> datetime | None:
        """When a version was published (None until the views have seen it)."""
        found = await conn.execute(
            text(f"SELECT published_at FROM {self.schema}.versions WHERE dataset_id = :id AND version = :v"),
            {"id": dataset_id, "v": version},
        )
        return found.scalar()

    async def datasets(
        self, conn: AsyncConnection, org_id: str, ai_module: str, environment: str
    ) -> list[Any]:
        """Dataset rows matching the filters (empty filter = any), newest first, at most 1000."""
        rows = await conn.execute(
            text(
                f"SELECT * FROM {self.schema}.datasets WHERE (:org = '' OR org_id = :org) "
                "AND (:module = '' OR ai_module = :module) AND (:env = '' OR environment = :env) "
                "ORDER BY created_at DESC, dataset_id LIMIT 1000"
            ),
            {"org": org_id, "module": ai_module, "env": environment},
        )
        return list(rows)

    async def sample_files(self, conn: AsyncConnection, sample_ids: Sequence[str]) -> dict[str, Any]:
        """The file facts (filename, sha256, size_bytes, media_type, provenance) of samples in the views."""
        rows = await conn.execute(
            text(
                f"SELECT sample_id, filename, sha256, size_bytes, media_type, source_camera_id, captured_at, "
                f"metadata FROM {self.schema}.samples "
                "WHERE sample_id = ANY(:ids)"
            ),
            {"ids": list(sample_ids)},
        )
        return {row.sample_id: row for row in rows}

    async def samples_page(
        self, conn: AsyncConnection, dataset_id: str, states: Sequence[str], size: int, after: str
    ) -> list[Any]:
        """Up to `size` sample rows of a dataset after sample id `after`, in sample id order."""
        rows = await conn.execute(
            text(
                f"SELECT * FROM {self.schema}.samples WHERE dataset_id = :id AND sample_id > :after "
                "AND (cardinality(CAST(:states AS text[])) = 0 OR state = ANY(CAST(:states AS text[]))) "
                "ORDER BY sample_id LIMIT :n"
            ),
            {"id": dataset_id, "after": after, "states": list(states), "n": size},
        )
        return list(rows)
