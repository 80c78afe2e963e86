"""Sample file names: a plain name of one file, never a path.

A name is stored in events and manifests and becomes a file name again on a trainer's disk, so it
must not be able to point anywhere else: no separators, no '.'/'..', nothing hidden, no control
characters, and at most 255 bytes of UTF-8 (the limit of common filesystems).
"""

from __future__ import annotations

import unicodedata

MAX_FILENAME_BYTES = 255

_WHAT_TO_DO = "send the file's own name, e.g. cat-001.png, not a path"


def check_filename(name: str) -> str | None:
    """What is wrong with `name` as a sample's file name (ending with what to do), or None when it is fine."""
    problem = _problem_of(name)
    return None if problem is None else f"{problem}; {_WHAT_TO_DO}"


def _problem_of(name: str) -> str | None:
    if not name:
        return "the file name is empty"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "the file name is not valid Unicode text"
    if size > MAX_FILENAME_BYTES:
        return f"the file name is {size} bytes long in UTF-8, more than {MAX_FILENAME_BYTES}"
    if "/" in name or "\\" in name:
        return "the file name contains a path separator ('/' or '\\')"
    control = next((char for char in name if _is_control(char)), None)
    if control is not None:
        return f"the file name contains the control character U+{ord(control):04X}"
    if name in {".", ".."}:
        return f"'{name}' names a folder, not a file"
    if name.startswith("."):
        return "the file name starts with '.' (a hidden file)"
    if ".." in name:
        return "the file name contains '..'"
    return None


def _is_control(char: str) -> bool:
    # Cc: C0/C1 controls and DEL (NUL, newline, escape …); Zl/Zp: line and paragraph separators.
    return unicodedata.category(char) in {"Cc", "Zl", "Zp"}
