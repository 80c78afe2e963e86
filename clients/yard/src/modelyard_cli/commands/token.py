"""`yard token mint`: sign a bearer token with MODELYARD_AUTH_SECRET (a dev and ops helper).

Whoever holds the secret can sign any token; hand out the tokens, never the secret.
"""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard_cli.commands.options import JsonFlag
from modelyard_cli.connection import SECRET_ENV
from modelyard_cli.invocation import cli_state, output_for
from modelyard_cli.output import fail
from modelyard_grpc import Role, mint_token

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
    as_json: JsonFlag = False,
) -> None:
    """Print a token signed with MODELYARD_AUTH_SECRET."""
    secret = cli_state(ctx).connection.auth_secret
    if not secret:
        fail(f"error: set {SECRET_ENV} to the platform's auth secret to sign tokens")
    unknown = [r for r in role if r not in ROLE_NAMES]
    if unknown:
        raise typer.BadParameter(f"unknown role(s) {', '.join(unknown)}; one of: {', '.join(ROLE_NAMES)}")
    try:
        token = mint_token(secret, subject, org, role, ttl_s)
    except ValueError as error:
        fail(f"error: {error}")
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document({"token": token, "subject": subject, "org_id": org, "roles": role, "ttl_s": ttl_s})
    else:
        typer.echo(token)
