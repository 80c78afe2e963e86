"""CPU seconds of the benchmark's process tree, by role, from /proc (Linux).

Every process below the benchmark (the services the dev platform started, PostgreSQL's postmaster
and backends, the broker, the agent processes) is read from /proc/<pid>/stat: utime + stime, the
process's own CPU (all its threads). A phase's cost is the difference of two snapshots; a process
that ended between them is left out (its CPU went to its parent's children's counts, not read here).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds by pid, and each pid's role."""

    seconds: Mapping[int, float]
    roles: Mapping[int, str]

    def by_role(self, since: CpuSnapshot) -> dict[str, float]:
        """CPU seconds spent per role from `since` to this snapshot (processes alive at both)."""
        spent: dict[str, float] = defaultdict(float)
        for pid, seconds in self.seconds.items():
            if pid in since.seconds:
                spent[self.roles[pid]] += seconds - since.seconds[pid]
        return dict(spent)


def snapshot(root: int, named: Mapping[int, str]) -> CpuSnapshot:
    """CPU seconds of `root` and every descendant; roles from `named` (pid → role), else from the
    process's name (postgres, the broker), else "other"."""
    children = _children()
    seconds: dict[int, float] = {}
    roles: dict[int, str] = {}
    pending = [root]
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, ()))
        cpu = _cpu_of(pid)
        if cpu is None:
            continue
        seconds[pid] = cpu
        roles[pid] = named.get(pid) or _role_of(pid, root)
    return CpuSnapshot(seconds, roles)


def _children() -> dict[int, list[int]]:
    found: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            found[int(fields[1])].append(int(entry.name))
    return found


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state is [0], ppid [1], utime [11])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _cpu_of(pid: int) -> float | None:
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _role_of(pid: int, root: int) -> str:
    if pid == root:
        return "benchmark client"
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "other"
    if name.startswith("postgres"):
        return "PostgreSQL"
    if "tansu" in name:
        return "broker"
    return f"other ({name})"
