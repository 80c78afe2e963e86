"""Reads of the registry's view: locate a version's module; page through versions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_events.db import checked_schema
from modelyard_events.domain_errors import InvalidArgument, NotFound

MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class VersionRow:
    """Where a version lives and what it is now (the module stream holds the rest)."""

    version_id: str
    org_id: str
    ai_module: str
    status: str


@dataclass(frozen=True)
class VersionPage:
    """One page of versions, newest number first, and the token of the next (empty at the end)."""

    rows: list[VersionRow]
    next_page_token: str


class RegistryViewReader:
    """Queries over RegistryViews' tables."""

    def __init__(self, engine: AsyncEngine, schema: str) -> None:
        self._engine, self._s = engine, checked_schema(schema)

    async def locate(self, version_id: str) -> tuple[str, str]:
        """(org_id, ai_module) of the version; NotFound when the registry has no such version."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    text(f"SELECT org_id, ai_module FROM {self._s}.model_versions WHERE version_id = :v"),
                    {"v": version_id},
                )
            ).first()
        if row is None:
            raise NotFound(
                f"model version {version_id[:200]} does not exist; list versions with yard models list"
            )
        return str(row[0]), str(row[1])

    async def page(
        self,
        org_id: str | None,
        ai_module: str | None,
        statuses: Sequence[str],
        page_size: int,
        page_token: str,
    ) -> VersionPage:
        """Versions by organization, module and status; ordered by module, then number descending."""
        if page_size < 0:
            raise InvalidArgument("page_size", f"page_size must be 0 (the default, 50) to {MAX_PAGE_SIZE}")
        size = min(page_size or 50, MAX_PAGE_SIZE)
        offset = _offset(page_token)
        where: list[str] = ["true"]
        params: dict[str, object] = {"limit": size + 1, "offset": offset}
        if org_id:
            where.append("org_id = :org")
            params["org"] = org_id
        if ai_module:
            where.append("ai_module = :module")
            params["module"] = ai_module
        if statuses:
            where.append("status = ANY(:statuses)")
            params["statuses"] = list(statuses)
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        f"SELECT version_id, org_id, ai_module, status FROM {self._s}.model_versions "
                        f"WHERE {' AND '.join(where)} ORDER BY org_id, ai_module, major DESC, minor DESC, "
                        "patch DESC, version_id LIMIT :limit OFFSET :offset"
                    ),
                    params,
                )
            ).all()
        found = [VersionRow(str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows[:size]]
        return VersionPage(found, str(offset + size) if len(rows) > size else "")


def _offset(token: str) -> int:
    if not token:
        return 0
    if not token.isdigit() or len(token) > 9:
        raise InvalidArgument("page_token", "not a page token from a previous ListVersions reply")
    return int(token)
