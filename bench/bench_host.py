"""What every benchmark records about its run, and the random payloads the download benchmarks serve."""

from __future__ import annotations

import hashlib
import os
import platform
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

READ_BYTES = 1 << 20


def machine(load_at_start: tuple[float, float, float], *packages: str) -> dict[str, Any]:
    """CPUs, processor, Python, the versions of `packages`, load before and after, and the time."""
    return {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        **{package: version(package) for package in packages},
        "load_1min_start": round(load_at_start[0], 2),
        "load_1min_end": round(os.getloadavg()[0], 2),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_random_file(path: Path, size: int) -> str:
    """`size` random bytes at `path` (its folder must not exist yet); their SHA-256."""
    path.parent.mkdir(parents=True)
    digest = hashlib.sha256()
    with path.open("wb") as file:
        for offset in range(0, size, READ_BYTES):
            chunk = os.urandom(min(READ_BYTES, size - offset))
            digest.update(chunk)
            file.write(chunk)
    return digest.hexdigest()
