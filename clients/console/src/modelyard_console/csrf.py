"""Cross-site request forgery: every POST must echo its session's CSRF token and come from our origin.

The session cookie is SameSite=Strict, so another site's form already arrives without it; the token (a
hidden form field, or the `X-CSRF-Token` header htmx sends) and the Origin check hold even where a
browser or proxy drops SameSite.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import FormData
from starlette.requests import Request

from modelyard_console.sessions import Session

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


class CsrfRefused(Exception):
    """A POST without its session's CSRF token, or from another origin."""


async def checked_form(request: Request, session: Session) -> FormData:
    """The POST's form, once its origin and CSRF token are the session's; CsrfRefused otherwise."""
    origin = request.headers.get("origin")
    if origin is not None and origin != own_origin(request):
        raise CsrfRefused(f"a form from {origin} may not act on this console")
    form = await request.form()
    given = request.headers.get(HEADER) or form.get(FIELD)
    if not isinstance(given, str) or not hmac.compare_digest(given, session.csrf_token):
        raise CsrfRefused("the form's security token is missing or stale: reload the page and try again")
    return form


def own_origin(request: Request) -> str:
    """`scheme://host[:port]` of the console as this request reached it."""
    return f"{request.url.scheme}://{request.url.netloc}"
