"""The JobService commands on one job, from the pages' buttons: priority, pause, resume, retry, and
cancel after a confirmation page. Each is the call `yard jobs …` makes; a refusal is shown as the
service gave it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.v1 import jobs_pb2
from modelyard_cli.connection import JobSvc
from modelyard_console.csrf import checked_form
from modelyard_console.gateway import Refusal
from modelyard_console.job_view import job_view
from modelyard_console.web import console_of, go, note_done, note_refusal, render, signed_in

_DONE = {"PauseJob": "paused", "ResumeJob": "resumed", "RetryJob": "retried", "CancelJob": "cancelled"}
_MAX_REASON_CHARS = 500


def back_to(back: object, default: str = "/queue") -> str:
    """Where to go after the action: `back` (from the form) when it is a path on this console.

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so `/<tab>/evil.example`
    would leave the console: only printable ASCII without backslashes, one leading slash, no scheme
    and no host pass.
    """
    if isinstance(back, str) and _is_own_path(back):
        return back
    return default


def _is_own_path(value: str) -> bool:
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return False
    if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in value):
        return False
    parts = urlsplit(value)
    return not parts.scheme and not parts.netloc


async def _act(
    request: Request, describe: str, call: Callable[[JobSvc], Awaitable[jobs_pb2.Job]]
) -> Response:
    session, token = signed_in(request)
    form = await checked_form(request, session)
    try:
        async with console_of(request).gateway.jobs(token) as svc:
            job = await call(svc)
        note_done(session, f"{job.name} ({job.job_id}) {describe}")
    except Refusal as refusal:
        note_refusal(session, refusal)
    return go(back_to(form.get("back")))


def _command(rpc: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        form = await request.form()
        reason = str(form.get("reason", ""))[:_MAX_REASON_CHARS]
        command = jobs_pb2.JobCommand(job_id=job_id, reason=reason)
        return await _act(request, _DONE[rpc], lambda svc: getattr(svc.jobs, rpc)(command))

    endpoint.__doc__ = f"{rpc} on the job named in the path."
    return endpoint


async def set_priority(request: Request) -> Response:
    """SetPriority from the queue's number field (0-100)."""
    form = await request.form()
    try:
        priority = int(str(form.get("priority", "")))
    except ValueError:
        priority = -1  # the service refuses it and says the range
    job_id = request.path_params["job_id"]
    command = jobs_pb2.SetPriorityRequest(job_id=job_id, priority=priority)
    return await _act(request, f"now has priority {priority}", lambda svc: svc.jobs.SetPriority(command))


async def confirm_cancel(request: Request) -> Response:
    """The confirmation step: the job as it is now, a reason field, and the button that cancels."""
    session, token = signed_in(request)
    ref = jobs_pb2.JobRef(job_id=request.path_params["job_id"])
    async with console_of(request).gateway.jobs(token) as svc:
        job = await svc.jobs.GetJob(ref)
    back = back_to(request.query_params.get("back"), f"/jobs/{ref.job_id}")
    return render(request, "confirm_cancel.html", session, title="Cancel job?", job=job_view(job), back=back)


routes = [
    Route("/jobs/{job_id}/priority", set_priority, methods=["POST"]),
    Route("/jobs/{job_id}/pause", _command("PauseJob"), methods=["POST"]),
    Route("/jobs/{job_id}/resume", _command("ResumeJob"), methods=["POST"]),
    Route("/jobs/{job_id}/retry", _command("RetryJob"), methods=["POST"]),
    Route("/jobs/{job_id}/cancel", confirm_cancel, methods=["GET"]),
    Route("/jobs/{job_id}/cancel", _command("CancelJob"), methods=["POST"]),
]
