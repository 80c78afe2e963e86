"""Edge servers, version/server compatibility, wave planning and drift: the small rules of the fleet."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from deploy_builders import MODULE, NOW, ORG, edge_facts, known_version, server_facts
from hypothesis import given
from hypothesis import strategies as st

from modelyard_deploy.domain import edge_server as edges
from modelyard_deploy.domain.compatibility import parse_version, server_refusal, version_refusal
from modelyard_deploy.domain.drift import drift_reasons
from modelyard_deploy.domain.edge_server import EdgeServer
from modelyard_deploy.domain.waves import plan_waves
from modelyard_events.domain_errors import InvalidArgument, InvalidFields, NotFound
from modelyard_events.schemas.deploy import MAX_WAVES, RunningModel


def registered(server_id: str = "edge-1") -> EdgeServer:
    [event] = edges.register(None, ORG, edge_facts(server_id))
    server = edges.fold(None, event, NOW)
    assert server is not None
    return server


def model(version_id: str, module: str = MODULE) -> RunningModel:
    return RunningModel(ai_module=module, version_id=version_id)


class TestRegisteringAnEdgeServer:
    def test_a_new_server_is_registered_with_its_facts(self) -> None:
        server = registered()
        assert (server.org_id, server.environment, server.platform, server.running) == (
            ORG, "production", "linux/amd64", {},
        )  # fmt: skip

    def test_registering_again_with_the_same_facts_decides_nothing(self) -> None:
        assert edges.register(registered(), ORG, edge_facts()) == []

    def test_registering_again_with_a_new_agent_version_records_it(self) -> None:
        server = registered()
        [event] = edges.register(server, ORG, edge_facts(edge_version="1.3.0"))
        assert server.apply(event, NOW).edge_version == "1.3.0"

    def test_bad_facts_are_refused_naming_every_field(self) -> None:
        with pytest.raises(InvalidFields) as refused:
            edges.register(None, ORG, edges.EdgeFacts("bad id!", "", "linux", ""))
        assert set(refused.value.problems) == {"server_id", "environment", "edge_version"}


class TestReportingWhatAServerRuns:
    def test_one_switch_per_module_that_changed(self) -> None:
        server = registered()
        switches = edges.report_running(server, [model("v1"), model("t1", "tabular")], NOW)
        assert {(s.ai_module, s.version_id, s.previous_version_id) for s in switches} == {
            (MODULE, "v1", None), ("tabular", "t1", None),
        }  # fmt: skip
        for switch in switches:
            server = server.apply(switch, NOW)
        assert edges.report_running(server, [model("v1"), model("t1", "tabular")], NOW) == []
        [switch] = edges.report_running(server, [model("v2"), model("t1", "tabular")], NOW, "d-9")
        assert (switch.version_id, switch.previous_version_id, switch.deployment_id) == ("v2", "v1", "d-9")

    def test_a_module_no_longer_listed_is_switched_off(self) -> None:
        server = registered().apply(edges.report_running(registered(), [model("v1")], NOW)[0], NOW)
        [switch] = edges.report_running(server, [], NOW)
        assert (switch.version_id, switch.previous_version_id) == (None, "v1")
        assert server.apply(switch, NOW).running == {}

    def test_an_unregistered_server_cannot_report(self) -> None:
        with pytest.raises(NotFound, match="register"):
            edges.report_running(None, [model("v1")], NOW)

    def test_a_module_listed_twice_is_refused(self) -> None:
        with pytest.raises(InvalidFields, match="more than once: digits"):
            edges.report_running(registered(), [model("v1"), model("v2")], NOW)


class TestWhichVersionsDeploy:
    def test_a_released_version_deploys(self) -> None:
        assert version_refusal(known_version()) is None

    @pytest.mark.parametrize(
        ("status", "says"),
        [
            ("draft", "is a draft"),
            ("testing", "being tested"),
            ("approved", "approved but not released"),
            ("deprecated", "is deprecated"),
        ],
    )
    def test_anything_but_released_is_refused_naming_its_status(self, status: str, says: str) -> None:
        refusal = version_refusal(known_version(status=status))
        assert refusal is not None
        assert says in refusal
        assert "digits 2.0.0" in refusal


class TestWhichServersCanRunAVersion:
    def test_a_matching_server_is_accepted(self) -> None:
        assert server_refusal(known_version(), server_facts()) is None

    def test_an_agent_below_the_minimum_is_refused_naming_both_versions(self) -> None:
        refusal = server_refusal(known_version(min_edge_version="1.10.0"), server_facts(edge_version="1.9.3"))
        assert refusal is not None
        assert "1.9.3 is below the version's minimum 1.10.0" in refusal

    def test_an_unsupported_platform_is_refused_naming_the_supported_ones(self) -> None:
        refusal = server_refusal(known_version(), server_facts(platform="linux/riscv64"))
        assert refusal is not None
        assert "linux/riscv64 is not supported" in refusal
        assert "linux/arm64" in refusal

    def test_a_server_in_an_environment_the_version_is_not_released_to_is_refused(self) -> None:
        refusal = server_refusal(known_version(), server_facts(environment="staging"))
        assert refusal is not None
        assert "released to production" in refusal
        assert "release it to staging" in refusal

    def test_an_earlier_release_stays_deployable_where_it_was_released(self) -> None:
        replaced = known_version("v1", environments=(), released_to=("production",))
        assert server_refusal(replaced, server_facts()) is None

    def test_an_earlier_release_of_another_environment_is_not(self) -> None:
        staging_only = known_version("v1", environments=(), released_to=("staging",))
        refusal = server_refusal(staging_only, server_facts())
        assert refusal is not None
        assert "released to staging" in refusal

    def test_every_reason_is_given_at_once(self) -> None:
        refusal = server_refusal(known_version(), server_facts(edge_version="0.9.0", platform="win"))
        assert refusal is not None
        assert "0.9.0 is below" in refusal
        assert "platform win is not supported" in refusal

    def test_pre_release_agents_meet_their_release_minimum(self) -> None:
        assert parse_version("v1.4.0-rc1") == (1, 4, 0)
        assert parse_version("2") == (2, 0, 0)
        assert parse_version("latest") is None


class TestPlanningWaves:
    def test_the_default_is_a_canary_then_everyone_else(self) -> None:
        assert plan_waves(10) == [1, 9]
        assert plan_waves(1) == [1]

    def test_given_sizes_are_used_in_order_and_the_rest_forms_the_last_wave(self) -> None:
        assert plan_waves(10, [1, 3]) == [1, 3, 6]

    def test_sizes_larger_than_what_is_left_are_cut(self) -> None:
        assert plan_waves(5, [2, 10, 4]) == [2, 3]

    def test_empty_waves_and_too_many_waves_are_refused(self) -> None:
        with pytest.raises(InvalidArgument, match="at least one server"):
            plan_waves(5, [1, 0])
        with pytest.raises(InvalidArgument, match=f"at most {MAX_WAVES}"):
            plan_waves(100, [1] * (MAX_WAVES + 1))
        with pytest.raises(InvalidArgument, match="leave 5 servers over"):
            plan_waves(MAX_WAVES + 5, [1] * MAX_WAVES)

    @given(st.integers(1, 5000), st.lists(st.integers(1, 300), max_size=MAX_WAVES - 1) | st.none())
    def test_waves_cover_every_server_once_and_start_with_the_first_size(
        self, count: int, sizes: list[int] | None
    ) -> None:
        planned = plan_waves(count, sizes)
        assert sum(planned) == count
        assert all(size >= 1 for size in planned)
        assert planned[0] == min((sizes or [1])[0], count)


class TestDrift:
    def test_a_server_running_what_is_intended_has_no_drift(self) -> None:
        assert drift_reasons({MODULE: "v2", "other": "x"}, {MODULE: "v2"}) == []

    def test_every_differing_module_is_named(self) -> None:
        assert drift_reasons({MODULE: "v1"}, {MODULE: "v2", "tabular": "t1"}) == [
            "digits: runs v1, intended v2",
            "tabular: runs nothing, intended t1",
        ]


def test_a_server_id_of_a_registration_is_kept_exactly() -> None:
    server = replace(registered("edge.7_a-b"), registered_at=NOW - timedelta(days=1))
    assert server.server_id == "edge.7_a-b"
