"""`make infra-up` / `make infra-down`: the embedded stack in the background, for manual use.

The servers run detached, their pids and URLs in `<state-dir>/state.json`;
PostgreSQL keeps its data in `<state-dir>/pg/data` between runs (the broker is
memory-only, so it starts empty each time).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from modelyard_devstack.broker import EmbeddedBroker
from modelyard_devstack.postgres import EmbeddedPostgres
from modelyard_devstack.processes import stop_pid
from modelyard_events.topics import FETCH_WAIT_ENV, TANSU_FETCH_WAIT_MS


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m modelyard_devstack up|down|status --state-dir DIR`."""
    parser = argparse.ArgumentParser(prog="modelyard-devstack", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--state-dir", type=Path, default=Path(".modelyard/infra"))
    args = parser.parse_args(argv)
    state_file: Path = args.state_dir / "state.json"
    return {"up": _up, "down": _down, "status": _status}[args.command](args.state_dir, state_file)


def _up(state_dir: Path, state_file: Path) -> int:
    state = _running(state_file)
    if state is not None:
        print("already running (make infra-down stops it):")
        _print_urls(state)
        return 0
    state_dir.mkdir(parents=True, exist_ok=True)
    postgres = EmbeddedPostgres(state_dir.resolve() / "pg" / "data", detached=True)
    broker = EmbeddedBroker(state_dir.resolve() / "broker", detached=True)
    try:
        database_url = postgres.start()
        bootstrap = broker.start()
    except BaseException:
        postgres.stop()
        broker.stop()
        raise
    state = {
        "database_url": database_url,
        "kafka_bootstrap_servers": bootstrap,
        "postgres_pid": postgres.pid,
        "broker_pid": broker.pid,
    }
    state_file.write_text(json.dumps(state, indent=2))
    print(
        f"started embedded PostgreSQL (pid {postgres.pid}) and Tansu (pid {broker.pid}); logs in {state_dir}"
    )
    _print_urls(state)
    return 0


def _down(state_dir: Path, state_file: Path) -> int:
    if not state_file.exists():
        print("nothing to stop: no infra-up state in", state_dir)
        return 0
    state = json.loads(state_file.read_text())
    for name in ("broker_pid", "postgres_pid"):
        stop_pid(int(state[name]))
    state_file.unlink()
    print(f"stopped; PostgreSQL data kept in {state_dir / 'pg'} (rm -rf {state_dir} to drop it)")
    return 0


def _status(state_dir: Path, state_file: Path) -> int:
    state = _running(state_file)
    if state is None:
        print("not running")
        return 1
    _print_urls(state)
    return 0


def _running(state_file: Path) -> dict[str, object] | None:
    """The recorded state if both servers are still alive, else None (a stale file is removed)."""
    if not state_file.exists():
        return None
    state: dict[str, object] = json.loads(state_file.read_text())
    pids = [int(str(state[name])) for name in ("postgres_pid", "broker_pid")]
    if all(_alive(pid) for pid in pids):
        return state
    for pid in pids:
        stop_pid(pid)
    state_file.unlink()
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _print_urls(state: dict[str, object]) -> None:
    print(f"export DATABASE_URL={state['database_url']}")
    print(f"export KAFKA_BOOTSTRAP_SERVERS={state['kafka_bootstrap_servers']}")
    print(f"export {FETCH_WAIT_ENV}={TANSU_FETCH_WAIT_MS}  # Tansu answers a waiting fetch late")


if __name__ == "__main__":
    sys.exit(main())
