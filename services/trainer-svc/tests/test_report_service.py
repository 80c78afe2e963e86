"""trainer-svc's AppendReports: a trainer appends its own reports, and nothing else, to the trainer log."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from modelyard.v1 import trainer_pb2
from modelyard_events.canonical import canonical_json
from modelyard_events.domain_errors import DomainError, InvalidArgument, PermissionDenied
from modelyard_events.envelope import Actor, CommandContext, payload_of
from modelyard_events.schemas.bounds import DETAIL_MAX_CHARS
from modelyard_events.schemas.jobs import DispatchRecord
from modelyard_events.schemas.training import (
    RUN_STREAM,
    TrainingCancelled,
    TrainingReport,
    TrainingStarted,
)
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_events.testing.signing import TEST_SIGNER
from modelyard_grpc import DependencyUnavailable, Principal, Role, acting_as
from modelyard_grpc.policy import roles_refusal
from modelyard_trainer.dispatches import KnownDispatches
from modelyard_trainer.grpc_api import SERVICES, TRAINER_POLICY
from modelyard_trainer.report_service import ReportServicer
from modelyard_trainer.report_wire import (
    MAX_REPORT_BYTES_PER_APPEND,
    MAX_REPORTS_PER_APPEND,
    append_request,
)

APPEND = "/modelyard.v1.TrainerReports/AppendReports"
TRAINER_A = Principal("trainer-a", None, frozenset({Role.TRAINER}))
TRAINER_B = Principal("trainer-b", None, frozenset({Role.TRAINER}))
CONTEXT = CommandContext(
    actor=Actor(subject="whoever-the-worker-claims", roles=("super_admin",)),
    org_id="org-1",
    correlation_id="corr-1",
    causation_id="cause-1",
)


# job-svc dispatched job-1 to trainer-a; its JobDispatched is event cause-1 of correlation corr-1
DISPATCH_TO_A = DispatchRecord("job-1", "dsp-1", 1, "trainer-a", "org-1", "cause-1", "corr-1")


def started(
    dispatch_id: str = "dsp-1", trainer_id: str = "trainer-a", job_id: str = "job-1", attempt: int = 1
) -> TrainingStarted:
    return TrainingStarted(
        job_id=job_id,
        attempt=attempt,
        dispatch_id=dispatch_id,
        trainer_id=trainer_id,
        device="cpu",
        amp=False,
        start_epoch=1,
        start_step=0,
        epochs_total=2,
        steps_per_epoch=10,
        train_samples=80,
        val_samples=20,
    )


def cancelled(dispatch_id: str = "dsp-1", trainer_id: str = "trainer-a") -> TrainingCancelled:
    return TrainingCancelled(job_id="job-1", attempt=1, dispatch_id=dispatch_id, trainer_id=trainer_id)


def request_of(
    reports: Sequence[TrainingReport], dispatch_id: str = "dsp-1", version: int = 0
) -> trainer_pb2.AppendReportsRequest:
    return append_request(dispatch_id, version, reports, CONTEXT)


def raw_request(*reports: tuple[str, str], dispatch_id: str = "dsp-1") -> trainer_pb2.AppendReportsRequest:
    return trainer_pb2.AppendReportsRequest(
        dispatch_id=dispatch_id,
        org_id="org-1",
        correlation_id="corr-1",
        causation_id="cause-1",
        reports=[trainer_pb2.ReportEvent(type=t, data_json=d) for t, d in reports],
    )


class Service:
    """The servicer over an in-memory trainer store that signs, called as a given principal; job-svc
    made the dispatches `dispatches` knows (DISPATCH_TO_A at first)."""

    def __init__(self) -> None:
        self.store = InMemoryEventStore(signer=TEST_SIGNER)
        self.dispatches = KnownDispatches(DISPATCH_TO_A)
        self.servicer = ReportServicer(self.store, self.dispatches)

    async def append(
        self, request: trainer_pb2.AppendReportsRequest, caller: Principal = TRAINER_A
    ) -> trainer_pb2.AppendReportsResponse:
        with acting_as(caller):
            return await self.servicer.AppendReports(request, None)  # type: ignore[arg-type]

    async def refused(self, request: trainer_pb2.AppendReportsRequest, caller: Principal = TRAINER_A) -> Any:
        with pytest.raises(DomainError) as refusal:
            await self.append(request, caller)
        return refusal.value


@pytest.fixture
def service() -> Service:
    return Service()


class TestAppendingOwnReports:
    async def test_reports_are_appended_in_order_with_the_caller_as_actor(self, service: Service) -> None:
        response = await service.append(request_of([started(), cancelled()]))

        stream = await service.store.read_stream("dsp-1")
        assert response.appended.stream_version == 2
        assert [e.type for e in stream] == ["TrainingStarted", "TrainingCancelled"]
        assert {(e.stream_type, e.actor, e.org_id, e.correlation_id, e.causation_id) for e in stream} == {
            (RUN_STREAM, Actor(subject="trainer-a", roles=("trainer",)), "org-1", "corr-1", "cause-1")
        }
        assert stream[0].data == payload_of(started())

    async def test_the_store_signs_what_the_service_appends(self, service: Service) -> None:
        await service.append(request_of([started()]))

        page = await service.store.read_signed(0)
        assert [h.position for h in page.heads] == [1]
        assert page.heads[0].key_id == TEST_SIGNER.key_id

    async def test_a_stream_not_at_the_expected_version_answers_its_actual_version(
        self, service: Service
    ) -> None:
        await service.append(request_of([started(), cancelled()]))

        response = await service.append(request_of([cancelled()], version=1))

        assert response.WhichOneof("result") == "conflict"
        assert response.conflict.actual_version == 2
        assert len(await service.store.read_stream("dsp-1")) == 2

    async def test_the_next_append_of_the_same_trainer_continues_its_stream(self, service: Service) -> None:
        await service.append(request_of([started()]))

        response = await service.append(request_of([cancelled()], version=1))

        assert response.appended.stream_version == 2


class TestRefusals:
    async def test_a_report_naming_another_trainer_is_refused(self, service: Service) -> None:
        refusal = await service.refused(request_of([started(), cancelled(trainer_id="trainer-b")]))

        assert isinstance(refusal, PermissionDenied)
        assert "reports[1]" in refusal.message
        assert "trainer-b" in refusal.message
        assert await service.store.read_all() == []

    @pytest.mark.parametrize(
        "roles",
        [
            frozenset({Role.SUPER_ADMIN}),
            frozenset({Role.AUDITOR}),
            frozenset({Role.EDGE}),
            frozenset({Role.ORG_ADMIN}),
            frozenset(),
        ],
        ids=["super_admin", "auditor", "edge", "org_admin", "no-role"],
    )
    async def test_a_caller_without_the_trainer_role_is_refused_even_as_the_named_trainer(
        self, service: Service, roles: frozenset[Role]
    ) -> None:
        refusal = await service.refused(request_of([started()]), Principal("trainer-a", "org-1", roles))

        assert isinstance(refusal, PermissionDenied)
        assert await service.store.read_all() == []

    async def test_a_report_naming_another_dispatch_is_refused(self, service: Service) -> None:
        refusal = await service.refused(request_of([started(dispatch_id="dsp-2")], dispatch_id="dsp-1"))

        assert isinstance(refusal, InvalidArgument)
        assert refusal.problems.keys() == {"reports[0].data_json.dispatch_id"}
        assert await service.store.read_all() == []

    async def test_a_trainer_cannot_add_to_another_trainers_dispatch_stream(self, service: Service) -> None:
        await service.append(request_of([started()]), TRAINER_A)

        refusal = await service.refused(request_of([cancelled(trainer_id="trainer-b")], version=1), TRAINER_B)

        assert isinstance(refusal, PermissionDenied)
        assert [e.actor.subject for e in await service.store.read_stream("dsp-1")] == ["trainer-a"]

    async def test_a_pool_token_speaks_for_its_members_only(self, service: Service) -> None:
        pool = Principal("trainer-worker", None, frozenset({Role.TRAINER}))
        service.dispatches.add(
            DispatchRecord("job-1", "dsp-1", 1, "trainer-worker/pod-1", "org-1", "cause-1", "corr-1")
        )

        await service.append(request_of([started(trainer_id="trainer-worker/pod-1")]), pool)
        refusals = [
            await service.refused(request_of([started("dsp-2", trainer_id=other)]), pool)
            for other in ("trainer-workers/pod-1", "trainer-worker/", "trainer-a")
        ]

        assert all(isinstance(refusal, PermissionDenied) for refusal in refusals)
        assert [e.data["trainer_id"] for e in await service.store.read_all()] == ["trainer-worker/pod-1"]

    async def test_another_member_of_a_pool_cannot_add_to_a_members_stream(self, service: Service) -> None:
        pool = Principal("trainer-worker", None, frozenset({Role.TRAINER}))
        service.dispatches.add(
            DispatchRecord("job-1", "dsp-1", 1, "trainer-worker/pod-1", "org-1", "cause-1", "corr-1")
        )
        await service.append(request_of([started(trainer_id="trainer-worker/pod-1")]), pool)

        refusal = await service.refused(
            request_of([cancelled(trainer_id="trainer-worker/pod-2")], version=1), pool
        )

        assert isinstance(refusal, PermissionDenied)
        assert len(await service.store.read_stream("dsp-1")) == 1

    async def test_a_trainer_cannot_open_the_stream_of_a_dispatch_made_to_another(
        self, service: Service
    ) -> None:
        squat = await service.refused(request_of([started(trainer_id="trainer-b")]), TRAINER_B)

        assert isinstance(squat, PermissionDenied)
        assert squat.message == "dispatch dsp-1 went to trainer trainer-a, not trainer-b"
        assert await service.store.read_all() == []
        assert (await service.append(request_of([started()]))).appended.stream_version == 1

    @pytest.mark.parametrize(
        "report",
        [started("dsp-9"), started(job_id="job-2")],
        ids=["a-dispatch-never-made", "another-jobs-dispatch"],
    )
    async def test_a_stream_of_a_dispatch_job_svc_never_made_is_not_opened(
        self, service: Service, report: TrainingStarted
    ) -> None:
        refusal = await service.refused(request_of([report], dispatch_id=report.dispatch_id))

        assert isinstance(refusal, PermissionDenied)
        assert f"job-svc made no dispatch {report.dispatch_id} of job {report.job_id}" in refusal.message
        assert await service.store.read_all() == []

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"attempt": 2}, "reports[0].data_json.attempt"),
            ({"org_id": None}, "org_id"),
            ({"org_id": "org-2"}, "org_id"),
            ({"org_id": ""}, "org_id"),
            ({"correlation_id": "corr-other"}, "correlation_id"),
            ({"causation_id": "cause-other"}, "causation_id"),
            ({"causation_id": None}, "causation_id"),
        ],
        ids=["attempt", "no-org", "another-org", "empty-org", "correlation", "cause", "no-cause"],
    )
    async def test_the_first_reports_must_be_of_the_dispatchs_run(
        self, service: Service, change: dict[str, object], field: str
    ) -> None:
        request = request_of([started(attempt=int(change.get("attempt", 1)))])
        for name, value in change.items():
            if name == "attempt":
                continue
            if value is None:
                request.ClearField(name)
            else:
                setattr(request, name, value)

        refusal = await service.refused(request)

        assert isinstance(refusal, InvalidArgument)
        assert refusal.problems.keys() == {field}
        assert "dispatch dsp-1's" in refusal.message
        assert await service.store.read_all() == []

    @pytest.mark.parametrize(
        "second",
        [
            started(trainer_id="trainer-worker/pod-1", attempt=2),
            started(trainer_id="trainer-worker/pod-1", job_id="job-2"),
            started(trainer_id="trainer-worker/pod-2"),
        ],
        ids=["another-attempt", "another-job", "another-member-of-the-pool"],
    )
    async def test_one_append_names_one_run(self, service: Service, second: TrainingStarted) -> None:
        pool = Principal("trainer-worker", None, frozenset({Role.TRAINER}))
        service.dispatches.add(
            DispatchRecord("job-1", "dsp-1", 1, "trainer-worker/pod-1", "org-1", "cause-1", "corr-1")
        )

        refusal = await service.refused(
            request_of([started(trainer_id="trainer-worker/pod-1"), second]), pool
        )

        assert isinstance(refusal, InvalidArgument)
        assert refusal.problems.keys() == {"reports[1].data_json"}
        assert await service.store.read_all() == []

    @pytest.mark.parametrize(
        ("field", "value", "problem"),
        [
            ("job_id", "", "is required"),
            ("job_id", "job\x00-1", "contains a NUL character: remove it"),
            ("trainer_id", "trainer-a/\x00", "contains a NUL character: remove it"),
        ],
        ids=["empty-job", "nul-in-job", "nul-in-trainer"],
    )
    async def test_a_report_without_a_usable_job_or_trainer_id_is_refused_naming_it(
        self, service: Service, field: str, value: str, problem: str
    ) -> None:
        data = payload_of(started()) | {field: value}

        refusal = await service.refused(raw_request(("TrainingStarted", json.dumps(data))))

        assert isinstance(refusal, InvalidArgument)
        assert refusal.problems == {f"reports[0].data_json.{field}": problem}
        assert service.dispatches.asked == 0

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"job_id": "job-2"}, "reports[0].data_json.job_id"),
            ({"attempt": 2}, "reports[0].data_json.attempt"),
            ({"org_id": "org-2"}, "org_id"),
            ({"correlation_id": "corr-other"}, "correlation_id"),
        ],
        ids=["another-job", "another-attempt", "another-org", "another-correlation"],
    )
    async def test_later_reports_keep_the_run_the_stream_was_opened_with(
        self, service: Service, change: dict[str, object], field: str
    ) -> None:
        await service.append(request_of([started()]))
        report = started(job_id=str(change.get("job_id", "job-1")), attempt=int(change.get("attempt", 1)))
        request = request_of([report], version=1)
        for name in ("org_id", "correlation_id"):
            if name in change:
                setattr(request, name, change[name])

        refusal = await service.refused(request)

        assert isinstance(refusal, InvalidArgument)
        assert refusal.problems.keys() == {field}
        assert "the stream of dispatch dsp-1's" in refusal.message
        assert len(await service.store.read_stream("dsp-1")) == 1

    async def test_a_retried_first_append_of_an_existing_stream_answers_a_conflict_without_job_svc(
        self, service: Service
    ) -> None:
        await service.append(request_of([started()]))
        asked = service.dispatches.asked

        response = await service.append(request_of([started()]))

        assert response.conflict.actual_version == 1
        assert service.dispatches.asked == asked  # job-svc was not asked again
        assert len(await service.store.read_stream("dsp-1")) == 1

    async def test_an_owner_check_reads_one_event_however_long_the_stream(self, service: Service) -> None:
        await service.append(request_of([started()] + [cancelled()] * 99))
        reads: list[int] = []
        read_stream = service.store.read_stream

        async def counted(stream_id: str, after_version: int = 0, *, limit: int | None = None) -> Any:
            found = await read_stream(stream_id, after_version, limit=limit)
            reads.append(len(found))
            return found

        service.store.read_stream = counted  # type: ignore[method-assign]

        stale = await service.append(request_of([cancelled()], version=1), TRAINER_A)
        squat = await service.refused(request_of([cancelled(trainer_id="trainer-b")], version=1), TRAINER_B)

        assert stale.conflict.actual_version == 100
        assert isinstance(squat, PermissionDenied)
        assert reads == [1, 1]

    async def test_job_svc_not_answering_refuses_the_append_for_a_retry(self, service: Service) -> None:
        async def unavailable(job_id: str, dispatch_id: str) -> DispatchRecord | None:
            raise DependencyUnavailable("job-svc could not confirm dispatch dsp-1 right now")

        service.dispatches.dispatch = unavailable  # type: ignore[method-assign]

        with pytest.raises(DependencyUnavailable):
            await service.append(request_of([started()]))
        assert await service.store.read_all() == []

    async def test_an_unknown_report_type_is_refused_naming_the_field(self, service: Service) -> None:
        job_event = ("JobCompleted", canonical_json(payload_of(cancelled())))

        refusal = await service.refused(raw_request(job_event))

        assert isinstance(refusal, InvalidArgument)
        assert refusal.problems.keys() == {"reports[0].type"}
        assert "JobCompleted" in refusal.message

    @pytest.mark.parametrize(
        "data_json",
        ['{"job_id": "job-1",', "[1, 2]", "[" * 100_000 + "]" * 100_000, ""],
        ids=["truncated", "not-an-object", "nested-too-deep", "empty"],
    )
    async def test_a_payload_that_is_not_a_json_object_is_refused(
        self, service: Service, data_json: str
    ) -> None:
        refusal = await service.refused(raw_request(("TrainingCancelled", data_json)))

        assert isinstance(refusal, InvalidArgument)
        assert refusal.problems.keys() == {"reports[0].data_json"}

    async def test_a_payload_with_a_lone_surrogate_escape_is_refused_and_nothing_is_written(
        self, service: Service
    ) -> None:
        data = payload_of(cancelled())
        text = json.dumps(data)[:-1] + ', "note": "a\\ud800b"}'  # valid JSON, not Unicode text
        data_json = json.dumps(payload_of(cancelled()) | {"dispatch_id": "dsp-1"}).replace(
            '"dsp-1"', '"dsp-\\ud800"'
        )

        for bad in (text, data_json):
            refusal = await service.refused(raw_request(("TrainingCancelled", bad)))
            assert isinstance(refusal, InvalidArgument)
            assert refusal.problems.keys() == {"reports[0].data_json"}
            assert "lone surrogate" in refusal.message
        assert await service.store.read_stream("dsp-1") == []

    @pytest.mark.parametrize("field", ["dispatch_id", "org_id", "correlation_id", "causation_id"])
    async def test_a_nul_in_an_id_is_refused_as_invalid_not_internal(
        self, service: Service, field: str
    ) -> None:
        request = request_of([cancelled()])
        setattr(request, field, getattr(request, field) + "\x00x")

        refusal = await service.refused(request)

        assert isinstance(refusal, InvalidArgument)
        assert refusal.problems == {field: "contains a NUL character: remove it"}
        assert await service.store.read_all() == []

    async def test_invalid_report_fields_are_refused_each_named(self, service: Service) -> None:
        data = payload_of(cancelled()) | {"attempt": 0, "smuggled": "x"}
        del data["job_id"]

        refusal = await service.refused(raw_request(("TrainingCancelled", json.dumps(data))))

        assert isinstance(refusal, InvalidArgument)
        assert refusal.problems.keys() == {
            "reports[0].data_json.attempt",
            "reports[0].data_json.job_id",
            "reports[0].data_json.smuggled",
        }

    async def test_a_phase_report_with_an_unknown_phase_is_refused_and_a_long_message_is_cut(
        self, service: Service
    ) -> None:
        fields = payload_of(cancelled())
        unknown = json.dumps(fields | {"phase": "mining_bitcoin", "message": "x"})
        refusal = await service.refused(raw_request(("TrainingPhaseChanged", unknown)))
        assert isinstance(refusal, InvalidArgument)
        assert refusal.problems.keys() == {"reports[0].data_json.phase"}

        long = json.dumps(fields | {"phase": "loading_data", "message": "y" * 100_000})
        await service.append(raw_request(("TrainingPhaseChanged", long)))
        (stored,) = await service.store.read_stream("dsp-1")
        assert len(stored.data["message"]) <= DETAIL_MAX_CHARS

    async def test_more_reports_than_one_append_holds_are_refused(self, service: Service) -> None:
        reports = [cancelled()] * (MAX_REPORTS_PER_APPEND + 1)

        refusal = await service.refused(request_of(reports))

        assert isinstance(refusal, InvalidArgument)
        assert refusal.problems.keys() == {"reports"}

    async def test_payloads_larger_than_one_append_holds_are_refused(self, service: Service) -> None:
        half = " " * (MAX_REPORT_BYTES_PER_APPEND // 2)  # JSON whitespace: only the size is wrong

        refusal = await service.refused(
            raw_request(("TrainingCancelled", half + "{}"), ("TrainingCancelled", half + "{}"))
        )

        assert isinstance(refusal, InvalidArgument)
        assert "bytes" in refusal.problems["reports"]
        assert await service.store.read_all() == []

    async def test_an_empty_append_and_ids_beyond_an_events_bounds_are_refused(
        self, service: Service
    ) -> None:
        request = request_of([], dispatch_id="d" * 201)
        request.correlation_id = "c" * 201

        refusal = await service.refused(request)

        assert isinstance(refusal, InvalidArgument)
        assert refusal.problems.keys() == {"dispatch_id", "correlation_id", "reports"}


class TestAccessPolicy:
    def test_the_policy_covers_every_served_rpc(self) -> None:
        assert TRAINER_POLICY.coverage_problems(SERVICES) == []

    @pytest.mark.parametrize("role", [Role.AUDITOR, Role.EDGE, Role.ORG_ADMIN])
    def test_only_trainers_and_super_admin_pass_the_interceptor(self, role: Role) -> None:
        rule = TRAINER_POLICY.rule_for(APPEND)

        assert roles_refusal(APPEND, rule, Principal("x", "org-1", frozenset({role}))) is not None
        assert roles_refusal(APPEND, rule, TRAINER_A) is None
