"""Child processes with readiness checks and a guaranteed end."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

_SETPRIV = shutil.which("setpriv")  # util-linux, on every Debian


def _dying_with_parent(argv: Sequence[str]) -> list[str]:
    """`argv` run so that the kernel kills it when this process dies (a killed test run leaves no
    server behind).

    setpriv(1) sets PR_SET_PDEATHSIG in the child after the uid switch (which would clear it) and
    execs `argv` in the same process. It used to be a `preexec_fn`; but Python code between fork and
    exec makes Popen fork() rather than vfork(), so gRPC's fork handlers ran in a process with live
    gRPC threads, and a restarted service crashed now and then (SIGSEGV, 7 of 120 restarts).
    Without setpriv, children do not die with their parent; nothing else changes.
    """
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv] if _SETPRIV else list(argv)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `condition` until true, or raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s")
        time.sleep(0.02)


async def eventually(condition: Callable[[], Awaitable[bool]], timeout_s: float = 60, what: str = "") -> None:
    """Await `condition` until true, checking often; AssertionError naming `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or condition}")
        await asyncio.sleep(0.05)  # the polling interval of a deadline-bounded wait


def spawn(
    argv: Sequence[str],
    log_path: Path,
    *,
    user: str | None = None,
    detached: bool = False,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server process logging to `log_path` (with `env` as its whole environment when given).

    Attached processes die with this one; detached ones (make infra-up) outlive
    it in their own session and are stopped by pid.
    """
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns the descriptor
    try:
        return subprocess.Popen(
            list(argv) if detached else _dying_with_parent(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            user=user,
            start_new_session=True,
            env=None if env is None else dict(env),
        )
    finally:
        log.close()


def stop_pid(pid: int, timeout_s: float = 10.0, *, first: signal.Signals = signal.SIGTERM) -> None:
    """Signal a process (and its session) with `first`, then SIGKILL it if it lingers."""
    for sig in (first, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.02)


def kill_pid(pid: int, timeout_s: float = 10.0) -> None:
    """SIGKILL a process (and its session) at once, as a crash or a pulled plug would, and reap it."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass  # not our child (a detached server): fall back to a signal probe
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")
