"""Inspection of uploaded images and videos, and the refusals common to every kind of file."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from modelyard_dataset.inspection import images as image_rules
from modelyard_dataset.inspection import inspect_file
from modelyard_events.domain_errors import InvalidArgument

MP4_HEADER = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x08free"


def image_bytes(image_format: str, size: tuple[int, int] = (16, 12), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color=0).save(buffer, format=image_format)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    checksum = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def write(tmp_path: Path, content: bytes, name: str = "upload.part") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def refusal(tmp_path: Path, filename: str, content: bytes) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as refused:
        inspect_file(filename, write(tmp_path, content))
    assert refused.value.field == f"files.{filename}"
    return refused.value


@pytest.mark.parametrize(
    ("filename", "pillow_format", "media_type"),
    [
        ("cat-001.png", "PNG", "image/png"),
        ("cat-002.JPG", "JPEG", "image/jpeg"),
        ("cat-003.jpeg", "JPEG", "image/jpeg"),
        ("cat-004.gif", "GIF", "image/gif"),
        ("cat-005.bmp", "BMP", "image/bmp"),
        ("cat-006.webp", "WEBP", "image/webp"),
    ],
)
def test_a_valid_image_is_accepted_with_its_size(
    tmp_path: Path, filename: str, pillow_format: str, media_type: str
) -> None:
    inspected = inspect_file(filename, write(tmp_path, image_bytes(pillow_format)))

    assert inspected.kind == "image"
    assert inspected.media_type == media_type
    assert inspected.detail["width"] == 16
    assert inspected.detail["height"] == 12


def test_a_grey_png_reports_its_mode(tmp_path: Path) -> None:
    inspected = inspect_file("digit.png", write(tmp_path, image_bytes("PNG", mode="L")))

    assert inspected.detail == {"width": 16, "height": 12, "mode": "L"}


@pytest.mark.parametrize(
    ("filename", "header", "media_type"),
    [
        ("clip.mp4", MP4_HEADER, "video/mp4"),
        ("clip.m4v", MP4_HEADER, "video/x-m4v"),
        ("clip.mov", b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ", "video/quicktime"),
        ("clip.webm", b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm", "video/webm"),
        ("clip.mkv", b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01matroska", "video/x-matroska"),
        ("clip.avi", b"RIFF\x24\x00\x00\x00AVI LIST", "video/x-msvideo"),
    ],
)
def test_a_video_is_accepted_by_its_container_signature(
    tmp_path: Path, filename: str, header: bytes, media_type: str
) -> None:
    inspected = inspect_file(filename, write(tmp_path, header + b"\x00" * 100))

    assert inspected.kind == "video"
    assert inspected.media_type == media_type


def test_an_mp4_reports_its_brand(tmp_path: Path) -> None:
    inspected = inspect_file("clip.mp4", write(tmp_path, MP4_HEADER))

    assert inspected.detail == {"container": "MP4/QuickTime", "brand": "isom"}


def test_a_path_like_name_is_refused_before_the_content_is_read(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as refused:
        inspect_file("../cat.png", tmp_path / "never-written")

    assert refused.value.field == "files.../cat.png"
    assert "not a path" in refused.value.message


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    assert "cat.png is empty" in refusal(tmp_path, "cat.png", b"").message


@pytest.mark.parametrize("filename", ["notes.txt", "model.pt", "archive.tar.gz", "README"])
def test_an_unknown_extension_is_refused_with_the_accepted_ones(tmp_path: Path, filename: str) -> None:
    message = refusal(tmp_path, filename, b"anything").message

    assert "not accepted" in message
    assert ".png" in message
    assert ".csv" in message
    assert ".mp4" in message


def test_a_png_holding_jpeg_bytes_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "cat.png", image_bytes("JPEG")).message

    assert "claims to be PNG (by its extension) but its content is JPEG" in message


def test_text_named_png_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "cat.png", b"this is not an image\n").message

    assert "claims to be PNG (by its extension) but its content is text" in message


def test_a_truncated_png_is_refused(tmp_path: Path) -> None:
    whole = image_bytes("PNG", size=(64, 64))

    message = refusal(tmp_path, "cat.png", whole[: len(whole) // 2]).message

    assert "is not a readable PNG image" in message


def test_a_png_with_corrupt_bytes_is_refused(tmp_path: Path) -> None:
    corrupt = bytearray(image_bytes("PNG", size=(64, 64)))
    corrupt[40:60] = b"\xff" * 20

    message = refusal(tmp_path, "cat.png", bytes(corrupt)).message

    assert "is not a readable PNG image" in message


def test_a_png_whose_pixel_data_does_not_decompress_is_refused(tmp_path: Path) -> None:
    # Every checksum is right, so only decoding the pixels finds the damage.
    whole = image_bytes("PNG", size=(64, 64))
    start = whole.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", whole[start : start + 4])
    garbage = png_chunk(b"IDAT", b"\x78\x9c" + b"\xff" * (length - 2))
    damaged = whole[:start] + garbage + whole[start + 12 + length :]

    message = refusal(tmp_path, "cat.png", damaged).message

    assert "is not a readable PNG image" in message


def test_a_png_with_a_bad_checksum_after_the_pixels_is_refused(tmp_path: Path) -> None:
    # Decoding stops at the pixels; only verify() reads on to the end and checks every chunk.
    whole = image_bytes("PNG")
    damaged = whole[:-12] + png_chunk(b"tEXt", b"note\x00hi", crc=1) + whole[-12:]

    message = refusal(tmp_path, "cat.png", damaged).message

    assert "is not a readable PNG image" in message
    assert "checksum" in message


def test_a_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    whole = image_bytes("JPEG", size=(64, 64))

    message = refusal(tmp_path, "cat.jpg", whole[: len(whole) // 2]).message

    assert "is not a readable JPEG image" in message


def test_an_image_with_too_many_pixels_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image_rules, "MAX_IMAGE_PIXELS", 100)

    message = refusal(tmp_path, "huge.png", image_bytes("PNG", size=(20, 20))).message

    assert "20×20 pixels" in message
    assert "downscale" in message


def test_an_mp4_without_an_ftyp_box_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "clip.mp4", b"\x00\x00\x00\x18moovisom" + b"\x01" * 40).message

    assert "claims to be MP4 (by its extension) but its content is" in message


def test_a_webm_holding_an_mp4_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "clip.webm", MP4_HEADER).message

    assert "claims to be WebM (by its extension) but its content is MP4/QuickTime" in message


def test_a_refusal_does_not_show_the_servers_staging_path(tmp_path: Path) -> None:
    path = tmp_path / "staged-x1y2.part"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    with pytest.raises(InvalidArgument) as refused:
        inspect_file("broken.png", path)
    assert str(tmp_path) not in refused.value.message
    assert "broken.png is not a readable PNG image" in refused.value.message
