"""pytest fixtures for the real stack: one PostgreSQL and one broker for the whole session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from modelyard_devstack.stack import Infra, infra


@pytest.fixture(scope="session")
def stack() -> Iterator[Infra]:
    """The session's servers (embedded unless the environment names others)."""
    with infra() as servers:
        yield servers


@pytest.fixture
def unique_schema() -> str:
    """A fresh schema name, so tests share one database without seeing each other."""
    return f"t_{uuid.uuid4().hex[:12]}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any server or worker process we started is still alive."""
    leftovers = [
        child
        for child in psutil.Process().children(recursive=True)
        if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    ]
    if leftovers:
        names = ", ".join(f"{c.pid} {' '.join(c.cmdline()[:3])}" for c in leftovers)
        print(f"\nprocesses left running after the tests: {names}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On a failed test that ran services, attach the machine's load and the tail of each service's
    log: a timeout under load in CI is otherwise a bare "timed out" with nothing to diagnose."""
    report = yield
    if report.failed and call.when == "call":
        for value in getattr(item, "funcargs", {}).values():
            describe = getattr(value, "log_tails", None)
            if callable(describe):
                report.sections.append(("service logs", describe()))
    return report
