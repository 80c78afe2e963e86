"""What every page handler shares: the console's parts, the signed-in session, rendering, redirects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from modelyard_console.badges import badge_for
from modelyard_console.gateway import Gateway, Refusal
from modelyard_console.sessions import COOKIE_NAME, Notice, Session, SessionStore
from modelyard_console.settings import ConsoleSettings

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


class NotSignedIn(Exception):
    """A page that needs a signed-in person was asked for without one."""


@dataclass(frozen=True, slots=True)
class Console:
    """The console's parts, built once by `build_app` and kept on the app's state."""

    settings: ConsoleSettings
    sessions: SessionStore
    gateway: Gateway
    templates: Jinja2Templates


def console_of(request: Request) -> Console:
    """The console serving `request`."""
    console: Console = request.app.state.console
    return console


def make_templates() -> Jinja2Templates:
    """The Jinja2 templates (autoescaped HTML) with the badge helper."""
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.globals["badge_for"] = badge_for
    return templates


def current_session(request: Request) -> Session | None:
    """The browser's live session, if its cookie names one."""
    return console_of(request).sessions.get(request.cookies.get(COOKIE_NAME))


def signed_in(request: Request) -> tuple[Session, str]:
    """The session and its token; NotSignedIn when nobody is signed in on this browser."""
    session = current_session(request)
    if session is None or session.token is None:
        raise NotSignedIn()
    return session, session.token


def render(
    request: Request, template: str, session: Session | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A page (or fragment) from `template`, with the session's user, CSRF token and notices."""
    notices = session.take_notices() if session is not None and not template.startswith("_") else []
    return console_of(request).templates.TemplateResponse(
        request,
        template,
        {"session": session, "user": session.user if session else None, "notices": notices, **context},
        status_code=status_code,
    )


def fragment(request: Request, template: str, **context: Any) -> str:
    """A template rendered to text (for event streams)."""
    return console_of(request).templates.get_template(template).render(request=request, **context)


def go(url: str) -> RedirectResponse:
    """See other: the browser GETs `url` (after a POST)."""
    return RedirectResponse(url, status_code=303)


def set_session_cookie(request: Request, response: Response, session: Session) -> None:
    """Give the browser its session id: HttpOnly, SameSite=Strict, Secure behind HTTPS."""
    response.set_cookie(
        COOKIE_NAME,
        session.session_id,
        httponly=True,
        samesite="strict",
        secure=console_of(request).settings.secure_cookie,
        path="/",
    )


def note_refusal(session: Session, refusal: Refusal) -> None:
    """Show `refusal` on the next page."""
    session.notices.append(Notice("refused", refusal.message, refusal.status))


def note_done(session: Session, text: str) -> None:
    """Show that an action was taken on the next page."""
    session.notices.append(Notice("done", text))


def refusal_html(request: Request) -> Callable[[Refusal], str]:
    """How a live part shows a refused read: the refusal box in its place."""

    def html(refusal: Refusal) -> str:
        return fragment(request, "_refusal.html", status=refusal.status, message=refusal.message)

    return html
