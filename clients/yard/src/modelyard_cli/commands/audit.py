"""`yard audit …`: tools for auditors (DESIGN §3, §6). `audit_app` is attached in main.py.

- `verify`: every service's hash chain and signed heads, read through ReadEvents, first broken
  link named; exit 0 only when every log verifies (1 when one does not, 2 when one cannot be read).
- `export`: a position range, a time range or an entity of one service's log as JSON Lines that
  `tools/verify_export.py` checks offline (docs/audit.md).

Both need a token with the auditor role (MODELYARD_TOKEN), and the services' public event keys
(`--keys FILE` or MODELYARD_EVENT_PUBLIC_KEYS, JSON {"<source>": ["<key>", ...]}).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from modelyard_cli.commands.audit_export import ExportSummary, export_log, parse_selection, part_of
from modelyard_cli.commands.audit_log import (
    DEFAULT_TRAINER_TARGET,
    SERVICE_NAMES,
    TRAINER_TARGET_ENV,
    AuditError,
    LogReader,
    LogService,
    event_log_stub,
    keys_for,
    missing_keys,
    pinned_keys,
    selected_names,
    service_named,
    target_of,
)
from modelyard_cli.commands.audit_verify import LogVerdict, ThrottledLines, verify_log
from modelyard_cli.commands.options import JsonFlag
from modelyard_cli.invocation import cli_state, command_token, output_for
from modelyard_cli.output import Output, fail
from modelyard_events.signing import HeadVerifier
from modelyard_grpc import TlsSettings

BROKEN_EXIT_CODE = 1  # a log that does not verify; 2 (ERROR_EXIT_CODE) is a log that could not be read

audit_app = typer.Typer(
    help="For auditors: verify every service's event log, export a verifiable range of one.",
    no_args_is_help=True,
)

KeysFile = Annotated[
    Path | None,
    typer.Option(
        "--keys",
        help='JSON {"<source>": ["<base64url public key>", ...]} (default: MODELYARD_EVENT_PUBLIC_KEYS).',
        show_default=False,
    ),
]
TrainerTarget = Annotated[
    str, typer.Option(envvar=TRAINER_TARGET_ENV, help="trainer-svc's gRPC address, host:port.")
]


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    service: Annotated[
        list[str] | None,
        typer.Option(
            "--service", help=f"A service to verify (repeatable; default all: {', '.join(SERVICE_NAMES)})."
        ),
    ] = None,
    keys: KeysFile = None,
    trainer_target: TrainerTarget = DEFAULT_TRAINER_TARGET,
    as_json: JsonFlag = False,
) -> None:
    """Check every event's hash, every link and every signed head of each service's log."""
    out = output_for(ctx, as_json)
    try:
        services = selected_names(service or [])
        keyring = pinned_keys(keys)
        pinned = [(s, _required_keys(s, keyring)) for s in services]
    except AuditError as error:
        fail(*error.lines)
    token = command_token(ctx)
    connection = cli_state(ctx).connection
    progress = ThrottledLines(lambda line: out.progress_console.print(line, markup=False))
    verdicts: list[LogVerdict] = []
    errors: list[str] = []
    for log_service, verifier in pinned:
        target = target_of(log_service, connection, trainer_target)
        try:
            verdict = asyncio.run(_verify_one(log_service, target, token, connection.tls, verifier, progress))
        except AuditError as error:
            errors += error.lines
            _report_error(out, log_service, error)
            continue
        verdicts.append(verdict)
        _report(out, verdict)
    if errors:
        fail(*errors)
    if not all(v.ok for v in verdicts):
        broken = ", ".join(v.service for v in verdicts if not v.ok)
        fail(f"error: the event log of {broken} does not verify", exit_code=BROKEN_EXIT_CODE)


async def _verify_one(
    service: LogService,
    target: str,
    token: str,
    tls: TlsSettings | None,
    keys: HeadVerifier,
    progress: ThrottledLines,
) -> LogVerdict:
    async with (tls or TlsSettings.from_environ({})).grpc_channel(target, token) as channel:
        return await verify_log(LogReader(service, target, event_log_stub(channel)), keys, progress)


def _report(out: Output, verdict: LogVerdict) -> None:
    if out.as_json:
        out.json_line(
            {
                "service": verdict.service,
                "ok": verdict.ok,
                "events": verdict.checked,
                "signed_through": verdict.signed_through,
                "head_position": verdict.head_position,
                "broken_position": verdict.broken.position if verdict.broken else None,
                "reason": verdict.broken.reason if verdict.broken else "",
            }
        )
    else:
        out.show(verdict.line())


def _report_error(out: Output, service: LogService, error: AuditError) -> None:
    if out.as_json:
        out.json_line({"service": service.name, "ok": False, "error": " ".join(error.lines)})
    else:
        out.show(f"{service.name}: could not be read (see below)")


def _required_keys(service: LogService, keyring: dict[str, HeadVerifier]) -> HeadVerifier:
    # verify checks signatures always: a chain alone is rewritten end to end by whoever owns the database
    verifier = keys_for(service, keyring)
    if verifier is None:
        raise missing_keys(service)
    return verifier


@audit_app.command("export")
def export(
    ctx: typer.Context,
    service: Annotated[str, typer.Option("--service", help=f"Whose log: one of {', '.join(SERVICE_NAMES)}.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the JSON Lines.", dir_okay=False)],
    from_time: Annotated[
        str | None, typer.Option("--from", help="Start of a time range (ISO 8601, UTC when no offset).")
    ] = None,
    to_time: Annotated[str | None, typer.Option("--to", help="End of the time range (exclusive).")] = None,
    entity: Annotated[
        str | None,
        typer.Option("--entity", help="One entity's events: STREAM_TYPE/STREAM_ID (e.g. job/<id>)."),
    ] = None,
    positions: Annotated[str | None, typer.Option("--positions", help="A position range A..B.")] = None,
    keys: KeysFile = None,
    trainer_target: TrainerTarget = DEFAULT_TRAINER_TARGET,
) -> None:
    """Export a range of one service's log, with hashes and signed heads, for an offline check
    (`python tools/verify_export.py FILE --keys KEYS.json`; docs/audit.md)."""
    out = output_for(ctx, False)
    try:
        log_service = service_named(service)
        selection = parse_selection(from_time, to_time, entity, positions)
        verifier = keys_for(log_service, pinned_keys(keys))
    except AuditError as error:
        fail(*error.lines)
    token = command_token(ctx)
    connection = cli_state(ctx).connection
    target = target_of(log_service, connection, trainer_target)

    def progress(read: int, head: int) -> None:
        lines(log_service.name, read, head)

    lines = ThrottledLines(lambda line: out.progress_console.print(line, markup=False))

    async def run() -> ExportSummary:
        async with (connection.tls or TlsSettings.from_environ({})).grpc_channel(target, token) as channel:
            reader = LogReader(log_service, target, event_log_stub(channel))
            return await export_log(reader, selection, out_file, verifier, progress)

    try:
        summary = asyncio.run(run())
    except BaseException as error:
        out_file.unlink(missing_ok=True)  # half an export is no export
        if isinstance(error, AuditError):
            fail(*error.lines)
        if isinstance(error, OSError):
            fail(f"error: cannot write {out_file}: {error.strerror}")
        raise
    finally:
        part_of(out_file).unlink(missing_ok=True)
    out.show(f"{log_service.name}: wrote {out_file}: {_summary_line(summary)}")
    if verifier is None:
        out.show(
            f"note: no public key pinned for {log_service.source!r}, so the signatures were not checked "
            "while exporting; the offline check does check them"
        )


def _summary_line(summary: ExportSummary) -> str:
    return (
        f"{summary.selected} selected events in positions {summary.first_position}..{summary.last_position} "
        f"({summary.events} events, signed by {', '.join(summary.key_ids)})"
    )
