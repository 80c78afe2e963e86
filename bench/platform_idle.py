"""What a whole platform costs while it has nothing to do: every service and a trainer worker on the
embedded stack, CPU time per process kind (from /proc) over 30 s after start-up.

The consumers' fetch wait dominates it on Tansu (bench/README.md, "Fetch wait on Tansu"); compare
waits with the variable set:

    MODELYARD_KAFKA_FETCH_WAIT_MS=50 .venv/bin/python bench/platform_idle.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from modelyard_devstack import infra
from modelyard_devstack.platform import platform
from modelyard_events.topics import FETCH_WAIT_ENV, fetch_max_wait_ms

SETTLE_S, MEASURE_S = 20.0, 30.0


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0  # it ended meanwhile
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _kinds() -> dict[int, str]:
    """This process's descendants (the stack it started, not another run on the machine) by kind:
    tansu, postgres, or the service's module and its first argument."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # it ended meanwhile
    ours, grew = {os.getpid()}, True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in ours} - ours
        ours, grew = ours | found, bool(found)
    kinds = {}
    for pid in ours - {os.getpid()}:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "tansu" in command:
            kinds[pid] = "tansu"
        elif "-m modelyard_" in command:
            kinds[pid] = " ".join(command.split("-m ", 1)[1].split()[:2])
        elif command.startswith("postgres") or "/postgres " in command:  # backends, the postmaster
            kinds[pid] = "postgres"
    return kinds


def main() -> None:
    with infra() as servers, platform(servers, Path(tempfile.mkdtemp()), lease_ttl_s=3.0) as running:
        running.spawn_trainer("idle-trainer")
        wait_ms = fetch_max_wait_ms()  # what the stack set, unless the environment did
        time.sleep(SETTLE_S)
        kinds = _kinds()
        before, started = {pid: _cpu_seconds(pid) for pid in kinds}, time.monotonic()
        time.sleep(MEASURE_S)
        elapsed = time.monotonic() - started
        share: dict[str, float] = {}
        for pid, kind in kinds.items():
            share[kind] = share.get(kind, 0.0) + (_cpu_seconds(pid) - before[pid]) / elapsed
    for kind, cores in sorted(share.items(), key=lambda item: -item[1]):
        print(f"{cores * 100:6.1f}% of a core  {kind}")
    print(f"{sum(share.values()) * 100:6.1f}% of a core  in all ({FETCH_WAIT_ENV}={wait_ms})")


if __name__ == "__main__":
    main()
