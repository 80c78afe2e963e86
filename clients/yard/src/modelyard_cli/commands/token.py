"""`yard token mint`: sign a bearer token with the issuer's key, MODELYARD_TOKEN_SIGNING_KEY.

Whoever holds the key can sign any token; hand out the tokens, never the key (services hold only
its public key, MODELYARD_TOKEN_PUBLIC_KEYS). `python -m modelyard_events.trust` makes a key pair.
"""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard_cli.commands.options import JsonFlag
from modelyard_cli.connection import SECRET_ENV
from modelyard_cli.invocation import cli_state, output_for
from modelyard_cli.output import fail
from modelyard_grpc import Role, TokenIssuer, mint_token
from modelyard_grpc.auth import SERVICES

ROLE_NAMES = tuple(role.value for role in Role)


def mint(
    ctx: typer.Context,
    subject: Annotated[
        str, typer.Option(help="Who the token names (a user, trainer or edge id).", show_default=False)
    ],
    role: Annotated[
        list[str], typer.Option(help=f"A role: {', '.join(ROLE_NAMES)}; repeat.", show_default=False)
    ],
    org: Annotated[str | None, typer.Option(help="The organization the token is confined to.")] = None,
    ttl_s: Annotated[float, typer.Option("--ttl-s", min=1, help="Seconds until the token expires.")] = 3600,
    audience: Annotated[
        list[str] | None,
        typer.Option(help=f"A service the token is for: {', '.join(SERVICES)}; repeat (default: all)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print a token signed with MODELYARD_TOKEN_SIGNING_KEY."""
    key = cli_state(ctx).connection.signing_key
    if not key:
        fail(f"error: set {SECRET_ENV} to the token issuer's private key to sign tokens")
    unknown = [r for r in role if r not in ROLE_NAMES]
    if unknown:
        raise typer.BadParameter(f"unknown role(s) {', '.join(unknown)}; one of: {', '.join(ROLE_NAMES)}")
    unknown_services = [a for a in audience or () if a not in SERVICES]
    if unknown_services:
        raise typer.BadParameter(
            f"unknown service(s) {', '.join(unknown_services)}; one of: {', '.join(SERVICES)}"
        )
    try:
        token = mint_token(TokenIssuer.from_text(key), subject, org, role, ttl_s, audience or SERVICES)
    except ValueError as error:
        fail(f"error: {error}")
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document({"token": token, "subject": subject, "org_id": org, "roles": role, "ttl_s": ttl_s})
    else:
        typer.echo(token)
