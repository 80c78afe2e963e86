"""The JobService commands on one job, from the pages' buttons: priority, pause, resume, retry, and
cancel after a confirmation page. Each is the call `yard jobs …` makes; a refusal is shown as the
service gave it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.v1 import jobs_pb2
from modelyard_cli.connection import JobSvc
from modelyard_console.csrf import checked_form
from modelyard_console.gateway import Refusal
from modelyard_console.job_view import job_view
from modelyard_console.sessions import Notice, Session
from modelyard_console.web import console_of, go, note_done, note_refusal, render, signed_in

_DONE = {"PauseJob": "paused", "ResumeJob": "resumed", "RetryJob": "retried", "CancelJob": "cancelled"}
_MAX_REASON_CHARS = 500
PRIORITY_MIN, PRIORITY_MAX = 0, 100  # job-svc's range (modelyard_job.domain.job_spec)


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


async def _signed_in_form(request: Request) -> tuple[Session, str, FormData]:
    # Who is asking first: a POST without a session is sent to sign in with its body unread.
    session, token = signed_in(request)
    return session, token, await checked_form(request, session)


async def _act(
    request: Request,
    session: Session,
    token: str,
    describe: str,
    call: Callable[[JobSvc], Awaitable[jobs_pb2.Job]],
) -> None:
    try:
        async with console_of(request).gateway.jobs(token) as svc:
            job = await call(svc)
        note_done(session, f"{job.name} ({job.job_id}) {describe}")
    except Refusal as refusal:
        note_refusal(session, refusal)


def _command(rpc: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        session, token, form = await _signed_in_form(request)
        reason = str(form.get("reason", ""))[:_MAX_REASON_CHARS]
        command = jobs_pb2.JobCommand(job_id=request.path_params["job_id"], reason=reason)
        await _act(request, session, token, _DONE[rpc], lambda svc: getattr(svc.jobs, rpc)(command))
        return go(back_to(form.get("back")))

    endpoint.__doc__ = f"{rpc} on the job named in the path."
    return endpoint


def priority_of(value: object) -> int:
    """The priority a form's field asks for; ValueError, worded as job-svc words it, outside 0..100."""
    text = str(value).strip()
    if not text.isdecimal() or not PRIORITY_MIN <= int(text) <= PRIORITY_MAX:
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise ValueError(
            f"priority must be between {PRIORITY_MIN} (lowest) and {PRIORITY_MAX} (highest); got {shown!r}"
        )
    return int(text)


async def set_priority(request: Request) -> Response:
    """SetPriority from the queue's number field (0-100); another value is refused here, not sent."""
    session, token, form = await _signed_in_form(request)
    try:
        priority = priority_of(form.get("priority", ""))
    except ValueError as error:
        session.notices.append(Notice("refused", str(error), "INVALID_ARGUMENT"))
        return go(back_to(form.get("back")))
    command = jobs_pb2.SetPriorityRequest(job_id=request.path_params["job_id"], priority=priority)
    await _act(
        request, session, token, f"now has priority {priority}", lambda svc: svc.jobs.SetPriority(command)
    )
    return go(back_to(form.get("back")))


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
