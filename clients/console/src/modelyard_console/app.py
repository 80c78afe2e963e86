"""The console's composition root: settings in, a Starlette app out; nothing happens at import."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from modelyard_console.csrf import CsrfRefused, FormRefused
from modelyard_console.gateway import Gateway, Refusal, http_status
from modelyard_console.routes import (
    audit,
    dashboard,
    datasets,
    fleet,
    history,
    job_actions,
    job_logs,
    jobs,
    models,
    queue,
    signin,
    submit,
)
from modelyard_console.security_headers import SecurityHeaders
from modelyard_console.sessions import SessionStore
from modelyard_console.settings import ConsoleSettings
from modelyard_console.web import (
    STATIC_DIR,
    Console,
    NotSignedIn,
    current_session,
    go,
    make_templates,
    render,
)


def build_app(settings: ConsoleSettings, gateway: Gateway | None = None) -> Starlette:
    """The console for `settings`; `gateway` replaces the gRPC one (tests)."""
    routes = [
        *signin.routes,
        *dashboard.routes,
        *queue.routes,
        *submit.routes,  # before jobs: /jobs/new is not a job id
        *job_actions.routes,
        *job_logs.routes,
        *jobs.routes,
        *history.routes,
        *models.routes,
        *fleet.routes,
        *datasets.routes,
        *audit.routes,
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            NotSignedIn: _to_sign_in,
            CsrfRefused: _csrf_refused,
            FormRefused: _form_refused,
            Refusal: _refused_page,
        },
    )
    app.add_middleware(SecurityHeaders)
    app.state.console = Console(
        settings, SessionStore(), gateway or Gateway(settings.targets, settings.tls), make_templates()
    )
    return app


async def _to_sign_in(request: Request, error: Exception) -> Response:
    response = go("/signin")
    if request.headers.get("HX-Request"):
        response.headers["HX-Redirect"] = "/signin"
    return response


async def _csrf_refused(request: Request, error: Exception) -> Response:
    return render(request, "refused.html", current_session(request), 403, status="CSRF", message=str(error))


async def _form_refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, FormRefused)
    session = current_session(request)
    return render(request, "refused.html", session, error.status_code, status="FORM", message=str(error))


async def _refused_page(request: Request, error: Exception) -> Response:
    assert isinstance(error, Refusal)
    status_code = http_status(error)
    return render(
        request,
        "refused.html",
        current_session(request),
        status_code,
        status=error.status,
        message=error.message,
    )
