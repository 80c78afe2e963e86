"""Servers spawned for tests die with the process that spawned them; detached ones outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

_PARENT = """
import sys, time
from pathlib import Path
from modelyard_devstack.processes import spawn
child = spawn(["sleep", "120"], Path(sys.argv[1]), detached=sys.argv[2] == "detached")
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie nobody reaped yet is dead too


def _child_of_killed_parent(tmp_path: Path, mode: str) -> int:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path / "child.log"), mode], stdout=subprocess.PIPE
    )
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    assert _alive(pid)
    parent.kill()
    parent.wait()
    return pid


def _dead_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.skipif(not Path("/usr/bin/setpriv").exists(), reason="needs setpriv (util-linux)")
def test_an_attached_child_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    pid = _child_of_killed_parent(tmp_path, "attached")
    assert _dead_within(pid, 10), f"pid {pid} outlived the process that spawned it"


def test_a_detached_child_outlives_its_parent(tmp_path: Path) -> None:
    pid = _child_of_killed_parent(tmp_path, "detached")
    try:
        assert not _dead_within(pid, 1)
    finally:
        os.kill(pid, signal.SIGKILL)
