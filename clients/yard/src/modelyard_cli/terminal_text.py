"""Text from a server made safe for a terminal: the one sanitizer every line yard prints goes through.

Names, reasons and messages are written by whoever created the dataset, job or error, so they can
hold terminal escape sequences (clear the screen, move the cursor, retitle the window, write the
clipboard with OSC 52, hide text) or controls that overwrite what was printed (carriage return,
backspace). `printable` removes escape sequences whole and every other control character (C0, DEL,
C1, and the bidirectional overrides that reorder what a reader sees), keeping newlines and tabs.
`SafeConsole` applies it to everything a rich console renders, so no renderer can forget it;
`json_text` escapes the same characters in JSON output instead of dropping them (data stays exact).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Text

_ESCAPE_SEQUENCE = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]?            # CSI: ESC [ params intermediates final
    | \x9b[0-?]*[ -/]*[@-~]?              # CSI, 8-bit
    | \x1b[\]PX^_].*?(?:\x07|\x1b\\|\x9c|$)   # OSC, DCS, SOS, PM, APC: up to BEL or ST
    | [\x9d\x90\x98\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)  # the same, 8-bit (terminated)
    | \x1b[ -/]*[0-~]?                    # any other ESC sequence (charset, keypad, reset …)
    """,
    re.VERBOSE | re.DOTALL,
)
_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_UNPRINTABLE = [
    *(chr(c) for c in range(0x20) if chr(c) not in "\n\t"),
    "\x7f",
    *(chr(c) for c in range(0x80, 0xA0)),
    *_BIDI_CONTROLS,
]
_DROP = str.maketrans(dict.fromkeys(_UNPRINTABLE))
_JSON_ESCAPES = re.compile("[" + re.escape("".join(c for c in _UNPRINTABLE if ord(c) >= 0x7F)) + "]")


def printable(text: str) -> str:
    """`text` without escape sequences or control characters (newlines and tabs are kept)."""
    return _ESCAPE_SEQUENCE.sub("", text).translate(_DROP)


def json_text(document: Any, indent: int | None = None, separators: tuple[str, str] | None = None) -> str:
    """`document` as JSON (non-ASCII kept readable) in which no string can drive a terminal: C0
    controls are escaped by JSON itself, DEL, C1 and bidirectional controls as \\uXXXX here."""
    text = json.dumps(document, indent=indent, separators=separators, ensure_ascii=False)
    return _JSON_ESCAPES.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


class SafeConsole(Console):
    """A rich Console whose text passes through `printable`: strings as rich turns them into text
    (before rich drops some controls itself, which would leave a sequence unterminated), then every
    rendered segment (text a renderer built itself). Rich's own styles and cursor controls (progress
    bars) are added after, so they still work."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """Rich's text of a string, made printable first."""
        return super().render_str(printable(text), **kwargs)

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        """The segments rich would render, their text made printable."""
        for segment in super().render(renderable, options):
            if segment.control or segment.text.isprintable():
                yield segment
            else:
                yield Segment(printable(segment.text), segment.style)
