"""Receiving a streamed upload: every refusal deletes what was staged; a cut-off stream is refused."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from PIL import Image

from modelyard_dataset.app.receiving import FileOpened, UploadOpened, UploadPart, UploadReceiver
from modelyard_dataset.storage.staging import Staging
from modelyard_events.domain_errors import InvalidArgument, InvalidFields


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
