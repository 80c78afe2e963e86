"""How yard prints: rich renderables for people, JSON documents for machines, errors on stderr."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console, RenderableType

from modelyard_cli.terminal_text import SafeConsole, json_text, printable

ERROR_EXIT_CODE = 2


def message_dict(message: Message, with_defaults: bool = False) -> dict[str, Any]:
    """A protobuf message as the JSON object yard prints (proto field names, proto3 JSON mapping).

    Fields at their default value are left out, unless `with_defaults` (for verdicts such as
    `ready: false`, which a reader should not have to infer from a missing key).
    """
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=with_defaults
    )


class Output:
    """One command's output: JSON when `as_json`, rich renderables otherwise.

    Hints for people go to stderr, so that stdout holds only the result. Everything goes through
    `terminal_text`: what a server sent cannot drive the terminal (escape sequences, controls).
    """

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console: Console = SafeConsole(highlight=False)
        self._hints: Console = SafeConsole(stderr=True, highlight=False)

    def document(self, document: dict[str, Any]) -> None:
        """Print one JSON document (indented)."""
        typer.echo(json_text(document, indent=2))

    def json_line(self, document: dict[str, Any]) -> None:
        """Print one JSON document on one line (for streams: one line per item)."""
        typer.echo(json_text(document, separators=(",", ":")))

    def show(self, *renderables: RenderableType) -> None:
        """Print rich renderables; plain strings are printed as they are (no markup)."""
        self.console.print(*renderables, markup=False)

    @property
    def progress_console(self) -> Console:
        """Where progress bars and per-step lines go: stdout for people, stderr beside JSON output."""
        return self._hints if self.as_json else self.console

    def lines(self, lines: list[str]) -> None:
        """Print each string on its own line, as it is (no markup)."""
        for line in lines:
            self.console.print(line, markup=False, soft_wrap=True)

    def hint(self, text: str) -> None:
        """A note for the person at the terminal (stderr)."""
        self._hints.print(text, style="dim", markup=False)


def fail(*lines: str, exit_code: int = ERROR_EXIT_CODE) -> NoReturn:
    """Print `lines` on stderr (made printable) and end the command with `exit_code` (no traceback)."""
    for line in lines:
        typer.echo(printable(line), err=True)
    raise typer.Exit(exit_code)
