"""Sign-in with a pasted bearer token, and sign-out.

The token stays in the console's memory (the browser keeps only a session id); its claims show who is
signed in. The console does not verify its signature: every service does, on every call.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard_console.csrf import checked_form
from modelyard_console.token_claims import MalformedToken, user_of
from modelyard_console.web import console_of, current_session, go, render, set_session_cookie


async def sign_in_form(request: Request) -> Response:
    """The form; a browser without a session gets one here, so the form carries a CSRF token."""
    session = current_session(request)
    if session is not None and session.user is not None:
        return go("/")
    session = session or console_of(request).sessions.new()
    response = render(request, "signin.html", session, title="Sign in")
    set_session_cookie(request, response, session)
    return response


async def sign_in(request: Request) -> Response:
    """Keep the pasted token for this browser's calls; the form again, saying why, when it is no token."""
    session = current_session(request)
    if session is None:  # no cookie (blocked, or expired): start over
        return go("/signin")
    form = await checked_form(request, session)
    token = str(form.get("token", ""))
    try:
        user = user_of(token)
    except MalformedToken as error:
        return render(request, "signin.html", session, 400, title="Sign in", problem=str(error))
    sessions = console_of(request).sessions
    sessions.drop(session.session_id)  # a new id at sign-in: a planted session id signs nobody in
    fresh = sessions.new_signed_in(token.strip().removeprefix("Bearer ").strip(), user)
    response = go("/")
    set_session_cookie(request, response, fresh)
    return response


async def sign_out(request: Request) -> Response:
    """Forget the token and the session."""
    session = current_session(request)
    if session is not None:
        await checked_form(request, session)
        console_of(request).sessions.drop(session.session_id)
    return go("/signin")


routes = [
    Route("/signin", sign_in_form, methods=["GET"]),
    Route("/signin", sign_in, methods=["POST"]),
    Route("/signout", sign_out, methods=["POST"]),
]
