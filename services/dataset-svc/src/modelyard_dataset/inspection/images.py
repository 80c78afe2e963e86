"""Images are decoded once with Pillow so that a corrupt or truncated file is refused at upload.

`verify()` checks the structure (PNG chunk CRCs …) without decoding; it leaves the image unusable,
so the file is opened again and `load()`ed, which decodes every pixel and catches truncated data.
Pillow's decompression-bomb guard stays on; our own pixel limit is lower and checked from the
header, before anything is decoded.
"""

from __future__ import annotations

import struct
from pathlib import Path

from PIL import Image

from modelyard_dataset.inspection.formats import FileFormat, UnreadableContent

# An 8K photograph has 33 million pixels; a bigger "sample" is more likely a decompression bomb.
MAX_IMAGE_PIXELS = 50_000_000

_PILLOW_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "GIF": "GIF", "BMP": "BMP", "WebP": "WEBP"}

# What Pillow raises for bytes it cannot decode (SyntaxError: broken PNG chunks; struct.error:
# short headers); anything else is a bug worth seeing, not a bad file.
_DECODING_FAILURES = (OSError, SyntaxError, ValueError, EOFError, struct.error)


def read_image(path: Path, image_format: FileFormat) -> dict[str, int | str]:
    """Width, height and mode of a fully decodable image; UnreadableContent otherwise."""
    decoders = [_PILLOW_FORMATS[image_format.label]]
    try:
        with Image.open(path, formats=decoders) as image:
            _check_pixel_count(image.width, image.height)
            image.verify()
        with Image.open(path, formats=decoders) as image:
            image.load()
            return {"width": image.width, "height": image.height, "mode": image.mode}
    except Image.DecompressionBombError as error:
        raise UnreadableContent(f"has too many pixels ({error}); downscale it first") from None
    except _DECODING_FAILURES as error:
        # Pillow names the file it read, a staging path that means nothing to the uploader.
        reason = (str(error) or type(error).__name__).replace(f" '{path}'", "").replace(str(path), "the file")
        raise UnreadableContent(
            f"is not a readable {image_format.label} image: {reason}; send an intact copy of the file"
        ) from None


def _check_pixel_count(width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise UnreadableContent(
            f"is {width}×{height} pixels, more than the {MAX_IMAGE_PIXELS:,} pixels accepted; "
            "downscale it first"
        )
