"""`yard edge-agent --server-id …`: run the edge agent (package modelyard_edge) in this process.

yard only hands the arguments over: the agent parses its own options (`yard edge-agent --help`), so
they are documented and tested in one place, clients/edge-agent. The agent's package is imported
only here, when the command runs, so that every other command starts without PyTorch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

import typer

from modelyard_cli.output import fail

AGENT_MODULE = "modelyard_edge.cli"

AgentMain = Callable[[list[str]], int | None]


def edge_agent(ctx: typer.Context) -> None:
    """Run an edge agent playing one edge server (`yard edge-agent --help` for its options)."""
    main = _agent_main()
    code = main(list(ctx.args))
    raise typer.Exit(code or 0)


def _agent_main() -> AgentMain:
    try:
        module = importlib.import_module(AGENT_MODULE)
    except ImportError as error:
        fail(f"error: the edge agent is not installed ({error}); install modelyard-edge-agent")
    main = getattr(module, "main", None)
    if not callable(main):
        fail(f"error: {AGENT_MODULE} has no main(argv); the edge agent installed is not one yard can run")
    return cast(AgentMain, main)
