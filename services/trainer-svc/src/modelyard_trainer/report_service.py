"""`modelyard.v1.TrainerReports/AppendReports`: workers append their reports through trainer-svc.

Workers hold neither the trainer store's database credentials nor the trainer log's signing key
(issue 11, item 4): this servicer, in the `serve` process, is the only writer of the log. It
appends only what a trainer may say about itself: reports of `TRAINER_EVENTS` naming the caller's
own trainer id and the request's dispatch, with the caller as the events' actor. A dispatch's
stream is opened only by the trainer job-svc dispatched it to (dispatches.py), with the
dispatch's job, attempt, organization, correlation id and event as cause; after that, only its
first writer adds to it, for the same run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from typing_extensions import override

from modelyard.v1 import trainer_pb2, trainer_pb2_grpc
from modelyard_events.domain_errors import InvalidArgument, InvalidFields, PermissionDenied
from modelyard_events.envelope import CommandContext, EventEnvelope
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.schemas.bounds import ID_MAX_CHARS
from modelyard_events.schemas.jobs import DispatchRecord
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
        claimed = RunOfReports.claimed(reports[0], acting)
        if request.expected_version == 0:
            await self._refuse_unless_dispatched(request.dispatch_id, claimed)
        else:
            await self._refuse_unless_owned(request, principal, claimed)
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

    async def _refuse_unless_dispatched(self, dispatch_id: str, claimed: RunOfReports) -> None:
        # A stream that exists already answers a conflict and writes nothing (a worker retrying an
        # append whose answer it lost goes on at the actual version): only a new one needs job-svc.
        if await self._store.read_stream(dispatch_id, 0, limit=1):
            return
        dispatch = await self._dispatches.dispatch(claimed.job_id, dispatch_id)
        if dispatch is None:
            raise PermissionDenied(
                f"job-svc made no dispatch {dispatch_id} of job {claimed.job_id}: "
                "a trainer reports only on the dispatches it was given"
            )
        if dispatch.trainer_id != claimed.trainer_id:
            raise PermissionDenied(
                f"dispatch {dispatch_id} went to trainer {dispatch.trainer_id}, not {claimed.trainer_id}"
            )
        _refuse_another_run(claimed, RunOfReports.of_dispatch(dispatch), f"dispatch {dispatch_id}'s")

    async def _refuse_unless_owned(
        self, request: trainer_pb2.AppendReportsRequest, principal: Principal, claimed: RunOfReports
    ) -> None:
        # The stream's event at `expected_version` (one row) says whose it is: its first writer is
        # its only writer, for the run it opened it with. No row: the append answers a conflict.
        tail = await self._store.read_stream(request.dispatch_id, request.expected_version - 1, limit=1)
        if not tail:
            return
        owned = RunOfReports.of_event(tail[0])
        if (tail[0].actor.subject, owned.trainer_id) != (principal.subject, claimed.trainer_id):
            raise PermissionDenied(
                f"dispatch {request.dispatch_id}'s reports are written by trainer {owned.trainer_id}, "
                f"not {claimed.trainer_id} of {principal.subject}"
            )
        _refuse_another_run(claimed, owned, f"the stream of dispatch {request.dispatch_id}'s")


@dataclass(frozen=True)
class RunOfReports:
    """What every report of one dispatch names or carries: its trainer, job and attempt, and the
    dispatch's organization, correlation id and event (the reports' cause)."""

    trainer_id: str
    job_id: str
    attempt: int
    org_id: str | None
    correlation_id: str | None
    causation_id: str | None

    @classmethod
    def claimed(cls, report: TrainingReport, acting: CommandContext) -> RunOfReports:
        """The run a request's reports say they are of."""
        return cls(
            report.trainer_id,
            report.job_id,
            report.attempt,
            acting.org_id,
            acting.correlation_id,
            acting.causation_id,
        )

    @classmethod
    def of_dispatch(cls, dispatch: DispatchRecord) -> RunOfReports:
        """The run job-svc recorded."""
        return cls(
            dispatch.trainer_id,
            dispatch.job_id,
            dispatch.attempt,
            dispatch.org_id,
            dispatch.correlation_id,
            dispatch.event_id,
        )

    @classmethod
    def of_event(cls, envelope: EventEnvelope) -> RunOfReports:
        """The run a stored report is of."""
        data = envelope.data
        return cls(
            data.get("trainer_id", ""),
            data.get("job_id", ""),
            data.get("attempt", 0),
            envelope.org_id,
            envelope.correlation_id,
            envelope.causation_id,
        )


_RUN_FIELDS = {
    "job_id": "reports[0].data_json.job_id",
    "attempt": "reports[0].data_json.attempt",
    "org_id": "org_id",
    "correlation_id": "correlation_id",
    "causation_id": "causation_id",
}


def _refuse_another_run(claimed: RunOfReports, recorded: RunOfReports, whose: str) -> None:
    problems = {
        field: f"must be {whose}: {getattr(recorded, name)!r}, not {getattr(claimed, name)!r}"
        for name, field in _RUN_FIELDS.items()
        if getattr(claimed, name) != getattr(recorded, name)
    }
    if problems:
        raise InvalidFields(problems)


def checked_reports(request: trainer_pb2.AppendReportsRequest, principal: Principal) -> list[TrainingReport]:
    """The request's reports, decoded, when the caller may append them.

    PermissionDenied unless the caller is a trainer and every report names it (`speaks_for`); InvalidArgument
    naming the field for a request out of bounds, an unknown type, a payload that is not JSON or
    not a valid report, a report naming another dispatch, no job or trainer id (or one with a NUL),
    or another trainer, job or attempt than reports[0].
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
        for name in ("job_id", "trainer_id"):
            value = getattr(report, name)
            if not value or "\x00" in value:
                problem = "is required" if not value else "contains a NUL character: remove it"
                raise InvalidArgument(f"reports[{index}].data_json.{name}", problem)
        if _run_of(report) != _run_of(reports[0]):
            raise InvalidArgument(
                f"reports[{index}].data_json", "must name the same trainer, job and attempt as reports[0]"
            )
    return reports


def _run_of(report: TrainingReport) -> tuple[str, str, int]:
    return report.trainer_id, report.job_id, report.attempt


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
        org_id=request.org_id or None,
        correlation_id=request.correlation_id or None,
        causation_id=request.causation_id or None,
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
