"""`python -m modelyard_console --port 8080`: serve the console until interrupted."""

from __future__ import annotations

import sys

import uvicorn

from modelyard_console.app import build_app
from modelyard_console.settings import parse_settings

# Live pages hold their event streams open; a stop must not wait for every browser to leave.
_GRACEFUL_SHUTDOWN_S = 2


def main() -> None:
    """Parse the options, build the app, serve it with uvicorn."""
    settings = parse_settings(sys.argv[1:])
    uvicorn.run(
        build_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
        server_header=False,
    )


if __name__ == "__main__":
    main()
