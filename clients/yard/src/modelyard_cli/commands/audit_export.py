"""`yard audit export`: a selection of one service's log as JSON Lines that verify offline.

A hash covers the previous hash, so a selection cannot be checked on its own: the export holds the
contiguous run of events from the first selected one through the first signed head at or after the
last selected one, every event marked `selected` or not, the signed heads in that run, and a header.
`tools/verify_export.py` checks such a file with only the standard library and `cryptography`
(docs/audit.md says how, byte for byte).

Streamed: one ReadEvents page in memory. The run goes to `<out>.part` first, because for a time range
or an entity the whole log is read and where the run ends is known only at the end of the log; the
part is then cut at that head, and the header (which names the run) is written before it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from modelyard.v1 import events_pb2
from modelyard_cli.commands.audit_log import (
    AuditError,
    LogReader,
    heads_of,
    json_line,
    served_fields,
    served_hash,
)
from modelyard_events.canonical import canonical_timestamp
from modelyard_events.chain_check import ChainChecker
from modelyard_events.envelope import GENESIS_HASH
from modelyard_events.signing import HeadVerifier, SignedHead

EXPORT_FORMAT = "modelyard-audit-export"
EXPORT_VERSION = 1  # the procedure's version: bump it when a line's shape or the hashing changes
Progress = Callable[[int, int], None]
"""progress(events read, head position): called after every page."""


@dataclass(frozen=True, slots=True)
class Selection:
    """Which events an auditor asked for: a position range, a time range [from, to), or one entity."""

    positions: tuple[int, int] | None = None
    time_range: tuple[datetime, datetime] | None = None
    entity: tuple[str, str] | None = None

    def matches(self, event: events_pb2.EventEnvelope) -> bool:
        """Whether `event` is one of those asked for."""
        if self.positions is not None:
            return self.positions[0] <= event.position <= self.positions[1]
        if self.time_range is not None:
            moment = event.occurred_at.ToDatetime(tzinfo=UTC)
            return self.time_range[0] <= moment < self.time_range[1]
        assert self.entity is not None
        return (event.stream_type, event.stream_id) == self.entity

    def describe(self) -> dict[str, str]:
        """The selection as the header records it."""
        if self.positions is not None:
            return {"positions": f"{self.positions[0]}..{self.positions[1]}"}
        if self.time_range is not None:
            return {
                "from": canonical_timestamp(self.time_range[0]),
                "to": canonical_timestamp(self.time_range[1]),
            }
        assert self.entity is not None
        return {"entity": f"{self.entity[0]}/{self.entity[1]}"}


def parse_selection(
    from_time: str | None, to_time: str | None, entity: str | None, positions: str | None
) -> Selection:
    """The one selection the options give; AuditError saying what to pass otherwise."""
    given = [name for name, value in (("--from/--to", from_time or to_time), ("--entity", entity),
                                       ("--positions", positions)) if value]  # fmt: skip
    if len(given) != 1:
        raise AuditError(
            "error: choose one selection: --from TIME --to TIME, --entity STREAM_TYPE/STREAM_ID, or "
            f"--positions A..B (given: {', '.join(given) or 'none'})"
        )
    if positions:
        first, sep, last = positions.partition("..")
        if not (sep and first.isdigit() and last.isdigit() and 1 <= int(first) <= int(last)):
            raise AuditError(f"error: --positions must be A..B with 1 <= A <= B, not {positions!r}")
        return Selection(positions=(int(first), int(last)))
    if entity:
        stream_type, sep, stream_id = entity.partition("/")
        if not (sep and stream_type and stream_id):
            raise AuditError(
                f"error: --entity must be STREAM_TYPE/STREAM_ID (e.g. job/<job id>), not {entity!r}"
            )
        return Selection(entity=(stream_type, stream_id))
    if not (from_time and to_time):
        raise AuditError("error: a time range needs both --from and --to (ISO 8601; UTC when no offset)")
    start, end = _moment(from_time, "--from"), _moment(to_time, "--to")
    if end <= start:
        raise AuditError(f"error: --to ({to_time}) must be after --from ({from_time})")
    return Selection(time_range=(start, end))


def _moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise AuditError(f"error: {option} is not an ISO 8601 time: {text!r}") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class _Run:
    """Where the exported run stands while the log streams past (O(1) but for the key ids seen)."""

    first_position: int = 0
    anchor: str = ""
    selected: int = 0
    last_selected: int = 0
    end_position: int = 0  # the signed head closing the run so far (0: the last selected is not yet covered)
    end_offset: int = 0
    key_ids: dict[str, int] = field(default_factory=dict)  # key id → first position it signed

    @property
    def started(self) -> bool:
        return self.selected > 0


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What was written: the run's positions, how many events were selected, which keys signed it."""

    first_position: int
    last_position: int
    selected: int
    events: int
    key_ids: list[str]
    signatures_checked: bool


def part_of(out: Path) -> Path:
    """Where the run is written before the header goes in front of it."""
    return out.with_name(out.name + ".part")


async def export_log(
    reader: LogReader, selection: Selection, out: Path, keys: HeadVerifier | None, progress: Progress
) -> ExportSummary:
    """Write the export of `selection` to `out`; AuditError when the log does not verify while it is
    read, nothing matches, or the log cannot be read. The caller removes `out` and its part on any
    failure (a CLI run of one task: the blocking file calls here stall nothing else)."""
    with part_of(out).open("w+", encoding="ascii", newline="\n") as body:
        run = await _stream(reader, selection, keys, body, progress)
        body.truncate(run.end_offset)
        with out.open("w", encoding="ascii", newline="\n") as final:
            final.write(json_line(_header(reader, selection, run, keys is not None)))
            body.seek(0)
            shutil.copyfileobj(body, final)
    events = run.end_position - run.first_position + 1
    ids = sorted(k for k, first in run.key_ids.items() if first <= run.end_position)
    return ExportSummary(run.first_position, run.end_position, run.selected, events, ids, keys is not None)


async def _stream(
    reader: LogReader, selection: Selection, keys: HeadVerifier | None, body: IO[str], progress: Progress
) -> _Run:
    # A position range starts at its first position (its predecessor's hash taken as given); a time
    # range or an entity is looked for from the start of the log, which is checked on the way.
    after = selection.positions[0] - 1 if selection.positions else 0
    checker: ChainChecker[events_pb2.EventEnvelope] = ChainChecker(
        served_hash, keys, after_position=after, prev_hash=GENESIS_HASH if after == 0 else None
    )
    run, read = _Run(), 0
    async for response in reader.pages(after):
        heads = heads_of(response)
        if (broken := checker.feed(response.events, heads)) is not None:
            raise AuditError(
                f"error: {reader.service.name}: the log does not verify at position {broken.position}: "
                f"{broken.reason}",
                "nothing was exported; `yard audit verify` checks the whole log",
            )
        read += len(response.events)
        _write_page(response.events, {h.position: h for h in heads}, selection, run, body)
        progress(read, response.head_position)
        if selection.positions and run.end_position >= selection.positions[1]:
            break
    if not run.started:
        raise AuditError(f"error: {reader.service.name}: no event matches {json.dumps(selection.describe())}")
    if run.end_position < run.last_selected:
        raise AuditError(
            f"error: {reader.service.name}: no signed head covers event {run.last_selected} yet: "
            "try again in a moment"
        )
    return run


def _write_page(
    events: Any, heads: dict[int, SignedHead], selection: Selection, run: _Run, body: IO[str]
) -> None:
    for event in events:
        chosen = selection.matches(event)
        if chosen:
            if not run.started:
                run.first_position, run.anchor = event.position, event.prev_hash
            run.selected += 1
            run.last_selected = event.position
        if not run.started:
            continue
        body.write(json_line({"kind": "event", "selected": chosen, "event": served_fields(event)}))
        head = heads.get(event.position)
        if head is not None:
            body.write(json_line({"kind": "head", "position": head.position, "hash": head.hash,
                                  "key_id": head.key_id, "signature": head.signature}))  # fmt: skip
            run.key_ids.setdefault(head.key_id, head.position)
            if run.end_position < run.last_selected:  # the first head covering the selection so far
                run.end_position, run.end_offset = event.position, body.tell()


def _header(reader: LogReader, selection: Selection, run: _Run, signatures_checked: bool) -> dict[str, Any]:
    return {
        "kind": "header",
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "service": reader.service.name,
        "source": reader.service.source,
        "key_ids": sorted(k for k, first in run.key_ids.items() if first <= run.end_position),
        "first_position": run.first_position,
        "last_position": run.end_position,
        "anchor_prev_hash": run.anchor,
        "selection": selection.describe(),
        "selected": run.selected,
        "signatures_checked_by_exporter": signatures_checked,
        "created_at": canonical_timestamp(datetime.now(UTC)),
        "procedure": "docs/audit.md; check with: python tools/verify_export.py FILE --keys KEYS.json",
    }
