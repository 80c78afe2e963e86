"""Models: registry-svc's versions, one version's evaluation and gates, and its lifecycle commands
(evaluate, approve, reject, release, deprecate, rollback) as `yard models …` sends them. A refusal
(four eyes, failed gates, the plan's limit) is shown with the service's status and message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.v1 import registry_pb2
from modelyard_cli.connection import RegistrySvc
from modelyard_console.csrf import checked_form
from modelyard_console.gateway import Refusal
from modelyard_console.model_view import REFUSAL_ADVICE, model_version_view
from modelyard_console.sessions import Notice
from modelyard_console.web import console_of, go, note_done, render, signed_in

VERSIONS_PAGE = 100
DEFAULT_ENVIRONMENT = "production"
_MAX_TEXT_CHARS = 2000


async def models_page(request: Request) -> Response:
    """Every version the caller may see, newest first (one page)."""
    session, token = signed_in(request)
    listing = registry_pb2.ListVersionsRequest(
        ai_module=request.query_params.get("module", ""), page_size=VERSIONS_PAGE
    )
    async with console_of(request).gateway.registry(token) as svc:
        found = await svc.registry.ListVersions(listing)
    versions = [model_version_view(v) for v in found.versions]
    return render(request, "models.html", session, title="Models", page="models", versions=versions)


async def model_page(request: Request) -> Response:
    """One version: lineage, artifact, evaluation, gates, approval and release, and its next steps."""
    session, token = signed_in(request)
    ref = registry_pb2.ModelVersionRef(version_id=request.path_params["version_id"])
    async with console_of(request).gateway.registry(token) as svc:
        version = await svc.registry.GetVersion(ref)
    view = model_version_view(version)
    return render(request, "model.html", session, title=f"{view.ai_module} {view.semantic_version}",
                  page="models", version=view, default_environment=DEFAULT_ENVIRONMENT)  # fmt: skip


def _text(form: Any, name: str, default: str = "") -> str:
    return str(form.get(name, default) or default)[:_MAX_TEXT_CHARS]


def _command(
    rpc: str, describe: str, build: Callable[[str, Any], Any]
) -> Callable[[Request], Awaitable[Response]]:
    """A POST endpoint sending `rpc` with the request `build(version_id, form)` makes."""

    async def endpoint(request: Request) -> Response:
        session, token = signed_in(request)
        form = await checked_form(request, session)
        version_id = request.path_params["version_id"]
        try:
            async with console_of(request).gateway.registry(token) as svc:
                await _call(svc, rpc, build(version_id, form))
            note_done(session, f"version {version_id} {describe}")
        except Refusal as refusal:
            advice = REFUSAL_ADVICE.get((rpc, refusal.status), "")
            session.notices.append(Notice("refused", refusal.message, refusal.status, advice))
        return go(f"/models/{version_id}")

    endpoint.__doc__ = f"{rpc} on the version named in the path."
    return endpoint


async def _call(svc: RegistrySvc, rpc: str, request: Any) -> Any:
    return await getattr(svc.registry, rpc)(request)


def _version(version_id: str, form: Any) -> registry_pb2.VersionCommand:
    return registry_pb2.VersionCommand(version_id=version_id, reason=_text(form, "reason"))


def _evaluation(version_id: str, form: Any) -> registry_pb2.EvaluateRequest:
    return registry_pb2.EvaluateRequest(version_id=version_id)


def _release(version_id: str, form: Any) -> registry_pb2.ReleaseRequest:
    environment = _text(form, "environment", DEFAULT_ENVIRONMENT)
    return registry_pb2.ReleaseRequest(
        version_id=version_id, environment=environment, release_notes=_text(form, "notes")
    )


def _rollback(version_id: str, form: Any) -> registry_pb2.RollbackRequest:
    environment = _text(form, "environment", DEFAULT_ENVIRONMENT)
    return registry_pb2.RollbackRequest(
        target_version_id=version_id, environment=environment, reason=_text(form, "reason")
    )


# path, RPC, what the notice says it did, the request from the version id and the form
_COMMANDS = [
    ("evaluate", "EvaluateVersion", "is being evaluated", _evaluation),
    ("approve", "ApproveVersion", "approved", _version),
    ("reject", "RejectVersion", "rejected (back to draft)", _version),
    ("release", "ReleaseVersion", "released", _release),
    ("deprecate", "DeprecateVersion", "deprecated", _version),
    ("rollback", "RollbackVersion", "released again (rollback)", _rollback),
]

routes = [
    Route("/models", models_page, methods=["GET"]),
    Route("/models/{version_id}", model_page, methods=["GET"]),
    *(
        Route(f"/models/{{version_id}}/{path}", _command(rpc, describe, build), methods=["POST"])
        for path, rpc, describe, build in _COMMANDS
    ),
]
