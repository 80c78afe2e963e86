"""Ask the kernel to start writing a file's new bytes to disk now, without waiting for it.

A download fsyncs its file before renaming it into place. Left to itself the kernel holds every
written page dirty until then, so the fsync writes the whole file after the transfer. Linux's
`sync_file_range(SYNC_FILE_RANGE_WRITE)` starts the write-back of a range and returns (RocksDB's
`bytes_per_sync` does the same), so the disk works while the network does and the final fsync only
waits for the tail. Where the call does not exist (not Linux, no libc found) this does nothing: the
fsync still makes the file durable, only later.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

_SYNC_FILE_RANGE_WRITE = 2


def _load() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing back `length` bytes of `fd` from `offset`; returns at once, errors ignored (the
    fsync that follows reports any that matter)."""
    if _sync_file_range is not None and length > 0:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)
