"""`modelyard.v1.TrainerReports/AppendReports`: workers append their reports through trainer-svc.

Workers hold neither the trainer store's database credentials nor the trainer log's signing key
(issue 11, item 4): this servicer, in the `serve` process, is the only writer of the log. It
appends only what a trainer may say about itself: reports of `TRAINER_EVENTS` naming the caller's
own trainer id and the request's dispatch, with the caller as the events' actor. A dispatch's
stream is opened only by the trainer job-svc dispatched it to, for that job, attempt and
organization (dispatches.py); after that, only its first writer adds to it, for the same run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from typing_extensions import override

from modelyard.v1 import trainer_pb2, trainer_pb2_grpc
from modelyard_events.domain_errors import InvalidArgument, InvalidFields, PermissionDenied
from modelyard_events.envelope import CommandContext
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.schemas.bounds import ID_MAX_CHARS
from modelyard_events.schemas.training import RUN_STREAM, TRAINER_EVENTS, TrainingReport
from modelyard_events.store.ports import EventStore
from modelyard_grpc import Principal, Role, current_principal
from modelyard_grpc.method_handlers import Context
from modelyard_trainer.dispatches import DispatchLookup
from modelyard_trainer.report_wire import MAX_REPORT_BYTES_PER_APPEND, MAX_REPORTS_PER_APPEND

_MAX_VIOLATIONS = 10  # a refusal lists at most this many wrong fields (its size stays bounded)


class ReportServicer(trainer_pb2_grpc.TrainerReportsServicer):
    """Appends a trainer's reports to its dispatch's stream in the trainer store (which signs)."""

    def __init__(self, store: EventStore, dispatches: DispatchLookup) -> None:
        self._store, self._dispatches = store, dispatches

    @override
    async def AppendReports(
        self, request: trainer_pb2.AppendReportsRequest, context: Context
    ) -> trainer_pb2.AppendReportsResponse:
        """Append, or answer the stream's actual version on a conflict (nothing written then)."""
        principal = current_principal()
        reports = checked_reports(request, principal)
        acting = report_context(request, principal)
        if request.expected_version == 0:
            await self._refuse_unless_dispatched(request.dispatch_id, reports[0], acting.org_id)
        else:
            await self._refuse_foreign_stream(request, principal, reports[0], acting.org_id)
        try:
            recorded = await self._store.append(
                RUN_STREAM, request.dispatch_id, request.expected_version, reports, acting
            )
        except ConcurrencyConflict as conflict:
            return trainer_pb2.AppendReportsResponse(
                conflict=trainer_pb2.ReportsConflict(actual_version=conflict.actual_version)
            )
        return trainer_pb2.AppendReportsResponse(
            appended=trainer_pb2.ReportsAppended(stream_version=recorded[-1].stream_version)
        )

    async def _refuse_unless_dispatched(
        self, dispatch_id: str, run: TrainingReport, org_id: str | None
    ) -> None:
        # A new stream: job-svc must have dispatched this job's run to this trainer (a stream that
        # exists already answers a conflict, and the worker goes on at its actual version).
        dispatch = await self._dispatches.dispatch(run.job_id, dispatch_id)
        if dispatch is None:
            raise PermissionDenied(
                f"job-svc made no dispatch {dispatch_id} of job {run.job_id}: "
                "a trainer reports only on the dispatches it was given"
            )
        if dispatch.trainer_id != run.trainer_id:
            raise PermissionDenied(
                f"dispatch {dispatch_id} went to trainer {dispatch.trainer_id}, not {run.trainer_id}"
            )
        if dispatch.attempt != run.attempt:
            raise InvalidArgument(
                "reports[0].data_json.attempt",
                f"dispatch {dispatch_id} is attempt {dispatch.attempt} of job {run.job_id}, "
                f"not {run.attempt}",
            )
        if dispatch.org_id != org_id:
            raise InvalidArgument(
                "org_id",
                f"must be the dispatch's organization ({dispatch.org_id or 'none'}), not {org_id or 'none'}",
            )

    async def _refuse_foreign_stream(
        self,
        request: trainer_pb2.AppendReportsRequest,
        principal: Principal,
        run: TrainingReport,
        org_id: str | None,
    ) -> None:
        # The event at `expected_version` (one row) says whose the stream is; its first writer is
        # its only writer, for the run and organization it opened it with.
        tail = await self._store.read_stream(request.dispatch_id, request.expected_version - 1)
        if not tail:
            return  # beyond the stream's end: the append answers a conflict
        last = tail[0]
        if (last.actor.subject, last.data.get("trainer_id")) != (principal.subject, run.trainer_id):
            raise PermissionDenied(
                f"dispatch {request.dispatch_id}'s reports are written by another trainer, "
                f"not {principal.subject}"
            )
        if (last.data.get("job_id"), last.data.get("attempt"), last.org_id) != (
            run.job_id,
            run.attempt,
            org_id,
        ):
            raise InvalidArgument(
                "reports[0].data_json",
                f"dispatch {request.dispatch_id}'s reports are about attempt {last.data.get('attempt')} of "
                f"job {last.data.get('job_id')} in organization {last.org_id or 'none'}: every report "
                "of a dispatch names the same run and organization",
            )


def checked_reports(request: trainer_pb2.AppendReportsRequest, principal: Principal) -> list[TrainingReport]:
    """The request's reports, decoded, when the caller may append them.

    PermissionDenied unless the caller is a trainer and every report names it (`speaks_for`); InvalidArgument
    naming the field for a request out of bounds, an unknown type, a payload that is not JSON or
    not a valid report, or a report naming another dispatch.
    """
    if Role.TRAINER not in principal.roles:
        raise PermissionDenied(f"only trainer workers append reports, and {principal.subject} is not one")
    _check_bounds(request)
    reports = [_decoded(index, message) for index, message in enumerate(request.reports)]
    for index, report in enumerate(reports):
        if not speaks_for(principal, report.trainer_id):
            raise PermissionDenied(
                f"reports[{index}] names trainer {report.trainer_id!r}; a trainer reports as itself only"
            )
        if report.dispatch_id != request.dispatch_id:
            raise InvalidArgument(
                f"reports[{index}].data_json.dispatch_id", "must be the request's dispatch_id"
            )
        if (report.job_id, report.attempt) != (reports[0].job_id, reports[0].attempt):
            raise InvalidArgument(
                f"reports[{index}].data_json", "must name the same job and attempt as reports[0]"
            )
    return reports


def speaks_for(principal: Principal, trainer_id: str) -> bool:
    """Whether the caller is trainer `trainer_id`: its token's subject, or a member `<subject>/<id>`
    of the pool it names (the workers of one Deployment may share a token; libs/grpc policy.py)."""
    subject = principal.subject
    return trainer_id == subject or (
        trainer_id.startswith(f"{subject}/") and len(trainer_id) > len(subject) + 1
    )


def report_context(request: trainer_pb2.AppendReportsRequest, principal: Principal) -> CommandContext:
    """The caller acts; organization, correlation and causation as the worker took them from the dispatch."""
    return CommandContext(
        actor=principal.as_actor(),
        org_id=request.org_id if request.HasField("org_id") else None,
        correlation_id=request.correlation_id or None,
        causation_id=request.causation_id if request.HasField("causation_id") else None,
    )


def _check_bounds(request: trainer_pb2.AppendReportsRequest) -> None:
    ids = {"dispatch_id": request.dispatch_id, "org_id": request.org_id}
    ids |= {"correlation_id": request.correlation_id, "causation_id": request.causation_id}
    problems = {
        f: f"must be at most {ID_MAX_CHARS} characters" for f, v in ids.items() if len(v) > ID_MAX_CHARS
    }
    problems |= {f: "contains a NUL character: remove it" for f, v in ids.items() if "\x00" in v}
    if not request.dispatch_id:
        problems["dispatch_id"] = "is required"
    if request.expected_version < 0:
        problems["expected_version"] = f"must be 0 or more, not {request.expected_version}"
    if not 1 <= len(request.reports) <= MAX_REPORTS_PER_APPEND:
        problems["reports"] = f"must hold 1 to {MAX_REPORTS_PER_APPEND} reports, not {len(request.reports)}"
    payload_bytes = sum(len(report.data_json.encode()) for report in request.reports)
    if payload_bytes > MAX_REPORT_BYTES_PER_APPEND:
        problems["reports"] = (
            f"payloads are {payload_bytes:,} bytes; one append holds at most {MAX_REPORT_BYTES_PER_APPEND:,}"
        )
    if problems:
        raise InvalidFields(problems)


def _decoded(index: int, message: trainer_pb2.ReportEvent) -> TrainingReport:
    field = f"reports[{index}]"
    if not TRAINER_EVENTS.knows(message.type):
        known = ", ".join(cls.type_name for cls in TRAINER_EVENTS.catalog())
        raise InvalidArgument(
            f"{field}.type", f"{message.type[:ID_MAX_CHARS]!r} is not a trainer report ({known})"
        )
    try:
        data = json.loads(message.data_json)
    except (ValueError, RecursionError) as error:
        raise InvalidArgument(f"{field}.data_json", f"is not JSON: {str(error)[:200]}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{field}.data_json", "must be a JSON object")
    try:  # a `\ud800` escape parses to a lone surrogate: no UTF-8 text, so nothing the store can hash
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise InvalidArgument(
            f"{field}.data_json", "holds a lone surrogate escape (\\ud800-\\udfff): not Unicode text"
        ) from None
    try:
        report = TRAINER_EVENTS.class_of(message.type).model_validate(data)
    except ValidationError as error:
        raise InvalidFields(_violations(f"{field}.data_json", error.errors())) from None
    if not isinstance(report, TrainingReport):  # every trainer event is one; this keeps mypy honest
        raise InvalidArgument(f"{field}.type", f"{message.type} is not a report")
    return report


def _violations(prefix: str, errors: Sequence[ErrorDetails]) -> dict[str, str]:
    problems: dict[str, str] = {}
    for error in errors[:_MAX_VIOLATIONS]:
        location = ".".join(str(part)[:ID_MAX_CHARS] for part in error["loc"])
        problems[f"{prefix}.{location}" if location else prefix] = str(error["msg"])[:500]
    return problems
