"""Receiving a streamed upload: every refusal deletes what was staged; a cut-off stream is refused."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from PIL import Image

from modelyard_blobs.staging import Staging
from modelyard_dataset.app.receiving import FileOpened, UploadOpened, UploadPart, UploadReceiver
from modelyard_dataset.domain.storage import StorageRoom
from modelyard_events.domain_errors import InvalidArgument, InvalidFields, QuotaExceeded


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), color=7).save(buffer, format="PNG")
    return buffer.getvalue()


async def parts(*items: UploadPart) -> AsyncIterator[UploadPart]:
    for item in items:
        yield item


async def allow(_: str) -> None:
    return None


def receiver(tmp_path: Path) -> tuple[UploadReceiver, Path]:
    root = tmp_path / "staging"
    return UploadReceiver(Staging(root), max_file_bytes=10_000), root


def staged(root: Path) -> Sequence[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_a_complete_upload_is_staged_hashed_and_inspected(tmp_path: Path) -> None:
    receive, root = receiver(tmp_path)
    image = png_bytes()
    upload = await receive.receive(
        parts(UploadOpened("ds-1", None, 1), FileOpened("cat.png", len(image)), image[:10], image[10:]), allow
    )
    assert [f.file.media_type for f in upload.files] == ["image/png"]
    assert upload.files[0].staged.path.read_bytes() == image
    upload.discard_staged()
    assert staged(root) == []


@pytest.mark.parametrize(
    ("stream", "words"),
    [
        (
            (UploadOpened("ds-1", None, 2), FileOpened("cat.png", None), "IMAGE"),
            "2 files were announced but 1 arrived",
        ),
        ((UploadOpened("ds-1", None, 1), FileOpened("cat.png", 999_999), "IMAGE"), "announced"),
        ((UploadOpened("ds-1", None, 1), b"bytes"), "before any `file` header"),
        ((UploadOpened("ds-1", None, 1), FileOpened("../cat.png", None)), "path"),
        ((FileOpened("cat.png", None),), "first message must be `start`"),
        ((UploadOpened("ds-1", None, 0),), "say how many files follow"),
    ],
)
async def test_refusals_leave_nothing_staged(tmp_path: Path, stream: tuple[object, ...], words: str) -> None:
    receive, root = receiver(tmp_path)
    image = png_bytes()
    items = [image if item == "IMAGE" else item for item in stream]
    with pytest.raises((InvalidArgument, InvalidFields), match=words):
        await receive.receive(parts(*items), allow)  # type: ignore[arg-type]
    assert staged(root) == []


async def test_the_dataset_is_authorized_before_any_byte_is_staged(tmp_path: Path) -> None:
    receive, root = receiver(tmp_path)

    async def refuse(dataset_id: str) -> None:
        raise PermissionError(dataset_id)

    with pytest.raises(PermissionError):
        await receive.receive(
            parts(UploadOpened("ds-2", None, 1), FileOpened("cat.png", None), png_bytes()), refuse
        )
    assert staged(root) == []


def open_files_under(root: Path) -> int:
    opened = 0
    for link in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            opened += Path(os.readlink(link)).is_relative_to(root)
    return opened


async def test_an_upload_of_many_files_holds_one_staged_file_open_at_a_time(tmp_path: Path) -> None:
    # Issue 11: 1,100 small PNGs in one call held 1,100 open files, hit EMFILE at a 1,024 soft limit and
    # failed as INTERNAL (with every other call of the process).
    receive, root = receiver(tmp_path)
    image, files = png_bytes(), 300
    most_open = 0

    async def many() -> AsyncIterator[UploadPart]:
        nonlocal most_open
        yield UploadOpened("ds-1", None, files)
        for index in range(files):
            yield FileOpened(f"{index:04d}.png", len(image))
            yield image[:20]
            yield image[20:]
            most_open = max(most_open, open_files_under(root))

    upload = await receive.receive(many(), allow)

    assert len(upload.files) == files
    assert most_open == 1
    assert open_files_under(root) == 0
    assert upload.files[-1].staged.path.read_bytes() == image
    upload.discard_staged()


async def test_bytes_beyond_the_plans_room_are_refused_before_they_are_staged(tmp_path: Path) -> None:
    receive, root = receiver(tmp_path)
    image = png_bytes()
    room = len(image) + 10
    sent: list[UploadPart] = []

    async def two_images() -> AsyncIterator[UploadPart]:
        for part in (
            UploadOpened("ds-1", None, 2),
            FileOpened("a.png", None),
            image,
            FileOpened("b.png", None),
        ):
            sent.append(part)
            yield part
        for start in range(0, len(image), 8):
            sent.append(image[start : start + 8])
            assert sum(len(p) for p in sent if isinstance(p, bytes)) <= room + 8, "staged past the room"
            yield image[start : start + 8]

    async def room_left(_: str) -> StorageRoom:
        return StorageRoom("acme", "Enterprise", room)

    with pytest.raises(
        QuotaExceeded, match=f"Enterprise plan has room for {room} B more dataset data in acme"
    ):
        await receive.receive(two_images(), room_left)
    assert staged(root) == []
    assert sum(len(p) for p in sent if isinstance(p, bytes)) <= room + 8


async def test_an_announced_size_beyond_the_plans_room_is_refused_at_its_header(tmp_path: Path) -> None:
    receive, root = receiver(tmp_path)
    sent: list[UploadPart] = []

    async def announced() -> AsyncIterator[UploadPart]:
        for part in (UploadOpened("ds-1", None, 1), FileOpened("big.png", 5_000), b"x" * 100):
            sent.append(part)
            yield part

    async def room_left(_: str) -> StorageRoom:
        return StorageRoom("acme", "Enterprise", 1_000)

    with pytest.raises(QuotaExceeded, match="needs at least 5 kB"):
        await receive.receive(announced(), room_left)
    assert not any(isinstance(part, bytes) for part in sent)
    assert staged(root) == []


async def test_a_deeply_nested_json_lines_file_is_refused_by_name_among_good_files(tmp_path: Path) -> None:
    receive, root = receiver(tmp_path)
    deep = b'{"x": ' + b"[" * 4_000 + b"]" * 4_000 + b"}\n"  # past json.loads's recursion limit
    image = png_bytes()
    stream = (
        UploadOpened("ds-1", None, 2),
        FileOpened("deep.jsonl", None),
        deep,
        FileOpened("ok.png", None),
        image,
    )

    with pytest.raises(InvalidFields) as refused:
        await receive.receive(parts(*stream), allow)

    assert list(refused.value.problems) == ["files.deep.jsonl"]
    assert "nested more than 32 levels deep on line 1" in refused.value.problems["files.deep.jsonl"]
    assert staged(root) == []


async def test_an_upload_id_longer_than_an_event_holds_is_refused_before_any_byte(tmp_path: Path) -> None:
    receive, root = receiver(tmp_path)

    with pytest.raises(InvalidArgument, match="at most 200 characters"):
        await receive.receive(parts(UploadOpened("ds-1", "u" * 201, 1), FileOpened("a.png", None)), allow)
    assert staged(root) == []
