"""Receiving a streamed upload: stage each file while hashing it, inspect it, report every bad file.

Transport-neutral: the servicer turns protobuf messages into `UploadOpened`, `FileOpened` and `bytes`
parts. Any failure (a bad file, a broken stream, a cancelled call) discards everything staged, so
nothing of the upload remains; on success the caller owns the staged files until it promotes them.

Bounded: one staged file is open at a time (a file is sealed when the next header arrives), and no
more bytes are staged than the organization's plan has room for (`authorize` says how many): an
upload that would pass it is refused before the byte that would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from modelyard_blobs.staging import Staging, StagingWriter
from modelyard_dataset.app.commands import AcceptedFile
from modelyard_dataset.domain.dataset import IncomingFile
from modelyard_dataset.domain.provenance import NO_PROVENANCE, Provenance, checked_provenance
from modelyard_dataset.domain.storage import StorageRoom
from modelyard_dataset.inspection import check_filename, inspect_file
from modelyard_events.domain_errors import InvalidArgument, InvalidFields
from modelyard_events.schemas.bounds import checked_identifier

MAX_FILES_PER_UPLOAD = 10_000
MAX_PROBLEMS_REPORTED = 20
_OFF_LOOP_BYTES = 256 * 1024  # smaller chunks cost less to write inline than a thread hop


@dataclass(frozen=True)
class UploadOpened:
    """The first part of every upload: which dataset, and the client's idempotency key."""

    dataset_id: str
    upload_id: str | None
    files: int


@dataclass(frozen=True)
class FileOpened:
    """A file header: the bytes parts that follow belong to this file."""

    filename: str
    size_bytes: int | None
    source_camera_id: str | None = None
    captured_at: datetime | None = None
    metadata: dict[str, str] | None = None


UploadPart = UploadOpened | FileOpened | bytes


@dataclass
class ReceivedUpload:
    """A complete upload whose files all passed inspection (staged, not yet stored)."""

    dataset_id: str
    upload_id: str | None
    files: list[AcceptedFile] = field(default_factory=list)

    def discard_staged(self) -> None:
        """Delete what is still staged (promotion moved the new blobs away; duplicates remain here)."""
        for accepted in self.files:
            accepted.staged.path.unlink(missing_ok=True)


@dataclass
class _OpenFile:
    filename: str
    declared_size: int | None
    writer: StagingWriter
    provenance: Provenance = NO_PROVENANCE


@dataclass
class _Room:
    """What the plan lets this upload stage (`plan` None: no limit) and what it staged so far."""

    plan: StorageRoom | None = None
    staged_bytes: int = 0

    def take(self, size_bytes: int) -> None:
        self.check(size_bytes)
        self.staged_bytes += size_bytes

    def check(self, size_bytes: int) -> None:
        if self.plan is not None:
            self.plan.check(self.staged_bytes + size_bytes)


class UploadReceiver:
    """Stages the files of one upload call, then inspects them (off the event loop)."""

    def __init__(
        self, staging: Staging, max_file_bytes: int, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._staging, self._max_file_bytes, self._clock = staging, max_file_bytes, clock

    async def receive(
        self, parts: AsyncIterator[UploadPart], authorize: Callable[[str], Awaitable[StorageRoom | None]]
    ) -> ReceivedUpload:
        """The inspected upload, or InvalidArgument / InvalidFields / QuotaExceeded (everything staged
        discarded).

        `authorize(dataset_id)` runs as soon as the dataset is named, before any byte is staged, and
        returns what the organization may still store (None: no limit), which bounds what is staged.
        """
        writers: list[_OpenFile] = []
        try:
            upload = await self._stage(parts, writers, authorize)
            await self._accept(upload, writers)
            return upload
        except BaseException:
            for opened in writers:
                opened.writer.discard()
            raise

    async def _stage(
        self,
        parts: AsyncIterator[UploadPart],
        writers: list[_OpenFile],
        authorize: Callable[[str], Awaitable[StorageRoom | None]],
    ) -> ReceivedUpload:
        upload: ReceivedUpload | None = None
        announced = 0
        names: set[str] = set()
        room = _Room()
        async for part in parts:
            if isinstance(part, UploadOpened):
                if upload is not None:
                    raise InvalidArgument("start", "send `start` once, as the first message of the upload")
                if not 1 <= part.files <= MAX_FILES_PER_UPLOAD:
                    raise InvalidArgument(
                        "start.files",
                        f"say how many files follow (1 to {MAX_FILES_PER_UPLOAD}); got {part.files}",
                    )
                upload_id = checked_identifier(part.upload_id, "start.upload_id")
                room.plan = await authorize(part.dataset_id)
                upload = ReceivedUpload(part.dataset_id, upload_id)
                announced = part.files
            elif upload is None:
                raise InvalidArgument("start", "the first message must be `start` naming the dataset")
            elif isinstance(part, FileOpened):
                self._open(part, names, writers, room)
            else:
                await self._write(part, writers, room)
        if upload is None:
            raise InvalidArgument("start", "the upload is empty; send `start`, then each file and its bytes")
        if len(writers) != announced:
            raise InvalidArgument(
                "start.files",
                f"{announced} files were announced but {len(writers)} arrived; the upload was cut off, "
                "so nothing of it was stored",
            )
        return upload

    def _open(self, part: FileOpened, names: set[str], writers: list[_OpenFile], room: _Room) -> None:
        problem = check_filename(part.filename)
        if problem is not None:
            raise InvalidArgument(f"files.{part.filename}", problem)
        if part.filename in names:
            raise InvalidArgument(
                f"files.{part.filename}", "is sent twice in this upload; send each file once"
            )
        if len(writers) >= MAX_FILES_PER_UPLOAD:
            raise InvalidArgument("files", f"send at most {MAX_FILES_PER_UPLOAD} files per upload call")
        provenance = checked_provenance(
            part.filename, part.source_camera_id, part.captured_at, part.metadata, self._clock()
        )
        if part.size_bytes is not None:  # an announced size that cannot fit is refused before its bytes
            room.check(part.size_bytes)
        if writers:
            writers[-1].writer.seal()  # its bytes are all in: one open file per upload
        names.add(part.filename)
        writers.append(_OpenFile(part.filename, part.size_bytes, self._staging.new_file(), provenance))

    async def _write(self, chunk: bytes, writers: list[_OpenFile], room: _Room) -> None:
        if not writers:
            raise InvalidArgument("chunk", "bytes arrived before any `file` header; send the header first")
        current = writers[-1]
        if current.writer.size_bytes + len(chunk) > self._max_file_bytes:
            raise InvalidArgument(
                f"files.{current.filename}",
                f"is larger than the {self._max_file_bytes:,}-byte limit per file",
            )
        room.take(len(chunk))
        if len(chunk) >= _OFF_LOOP_BYTES:  # writing and hashing a big chunk would stall other calls
            await asyncio.to_thread(current.writer.write, chunk)
        else:
            current.writer.write(chunk)

    async def _accept(self, upload: ReceivedUpload, writers: list[_OpenFile]) -> None:
        # One worker-thread hop for the whole upload: fsync, hashing done, Pillow decodes.
        accepted, problems = await asyncio.to_thread(_inspect_all, writers)
        if problems:
            raise InvalidFields(dict(list(problems.items())[:MAX_PROBLEMS_REPORTED]))
        upload.files.extend(accepted)


def _inspect_all(writers: list[_OpenFile]) -> tuple[list[AcceptedFile], dict[str, str]]:
    accepted: list[AcceptedFile] = []
    problems: dict[str, str] = {}
    for opened in writers:
        staged = opened.writer.finish()
        field_name = f"files.{opened.filename}"
        if opened.declared_size is not None and opened.declared_size != staged.size_bytes:
            problems[field_name] = (
                f"announced {opened.declared_size:,} bytes but {staged.size_bytes:,} arrived; "
                "the upload was cut short or the file changed while it was sent"
            )
            continue
        try:
            inspected = inspect_file(opened.filename, staged.path)
        except InvalidArgument as error:
            problems[field_name] = error.problems.get(field_name, error.message)
            continue
        incoming = IncomingFile(
            opened.filename, staged.sha256, staged.size_bytes, inspected.media_type, opened.provenance
        )
        accepted.append(AcceptedFile(incoming, staged))
    return accepted, problems
