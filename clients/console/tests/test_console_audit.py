"""The Audit page: the audit log searched with the form's filters, a correlation id followed, the
lineage drawn as an SVG (names escaped, every node a link) and listed; refusals shown on the page."""

from __future__ import annotations

import re

from console_fakes import FakeGateway, token_for
from console_pages import sign_in
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.testclient import TestClient

from modelyard.v1 import audit_pb2
from modelyard_console.lineage_graph import BOX_W, COLUMN_GAP, lay_out


def an_event(type_: str = "JobCreated", **fields: str) -> audit_pb2.AuditEvent:
    fields = {"stream_id": "j-1", "correlation_id": "c-42", **fields}
    return audit_pb2.AuditEvent(
        source="job", position=1, type=type_, stream_type="training_job", actor_subject="ada",
        org_id="acme", occurred_at=Timestamp(seconds=1_790_000_000), **fields,
    )  # fmt: skip


def a_node(kind: str, node_id: str, label: str = "") -> audit_pb2.LineageNode:
    return audit_pb2.LineageNode(kind=kind, id=node_id, org_id="acme", label=label or f"{kind} {node_id}")


def a_lineage() -> audit_pb2.GetLineageResponse:
    job = a_node("job", "j-1", "<b>digits</b> & co")
    nodes = [a_node("dataset_version", "ds-1/3"), a_node("model_version", "mv-1")]
    nodes.append(a_node("edge_server", "e-1"))
    edges = [
        audit_pb2.LineageEdge(from_kind="dataset_version", from_id="ds-1/3", to_kind="job", to_id="j-1",
                              relation="trained_on"),
        audit_pb2.LineageEdge(from_kind="job", from_id="j-1", to_kind="model_version", to_id="mv-1",
                              relation="trained_by"),
    ]  # fmt: skip
    return audit_pb2.GetLineageResponse(start=job, nodes=[job, *nodes], edges=edges)


def test_the_audit_page_is_in_the_navigation(browser: TestClient) -> None:
    sign_in(browser)
    assert '<a href="/audit"' in browser.get("/queue").text


def test_the_audit_page_searches_only_when_asked(browser: TestClient, gateway: FakeGateway) -> None:
    sign_in(browser)
    page = browser.get("/audit")
    assert 'role="search"' in page.text
    assert gateway.audit_service.calls == []


def test_the_search_sends_the_form_s_filters(browser: TestClient, gateway: FakeGateway) -> None:
    gateway.audit_service.events = [an_event()]
    sign_in(browser)
    page = browser.get(
        "/audit",
        params={"since": "2026-12-01T09:30", "actor": "ada", "org": "acme", "stream_type": "training_job",
                "stream_id": "j-1", "type": "JobCreated", "source": "job"},
    )  # fmt: skip
    assert page.status_code == 200
    (rpc, search), *_ = gateway.audit_service.calls
    assert rpc == "SearchAudit"
    assert (search.actor, search.org_id) == ("ada", "acme")
    assert (search.stream_type, search.stream_id) == ("training_job", "j-1")
    assert (search.type, search.source) == ("JobCreated", "job")
    assert search.since.ToJsonString() == "2026-12-01T09:30:00Z"
    assert not search.HasField("until")
    assert "JobCreated" in page.text
    assert "/audit/correlation?id=c-42" in page.text
    assert "/audit/lineage?kind=job&amp;id=j-1" in page.text


def test_a_time_that_is_no_time_is_refused_on_the_page_and_not_sent(
    browser: TestClient, gateway: FakeGateway
) -> None:
    sign_in(browser)
    page = browser.get("/audit", params={"since": "yesterday"})
    assert page.status_code == 400
    assert "is not a time" in page.text
    assert gateway.audit_service.calls == []


def test_an_org_admin_asking_for_another_organization_sees_the_refusal(
    browser: TestClient, gateway: FakeGateway
) -> None:
    gateway.audit_service.org_admin_of = "acme"
    sign_in(browser, token_for("olga", "acme", ("org_admin",)))
    page = browser.get("/audit", params={"org": "globex"})
    assert page.status_code == 403
    assert "PERMISSION_DENIED" in page.text
    assert "an org_admin reads only organization acme" in page.text
    assert 'value="globex"' in page.text  # the form keeps what was asked


def test_a_correlation_id_is_followed_across_services(browser: TestClient, gateway: FakeGateway) -> None:
    gateway.audit_service.events = [an_event(), an_event("VersionApproved", correlation_id="c-7")]
    sign_in(browser)
    page = browser.get("/audit/correlation", params={"id": "c-42"})
    assert "JobCreated" in page.text
    assert "VersionApproved" not in page.text


def test_the_lineage_svg_has_every_node_as_a_link_and_escapes_names(
    browser: TestClient, gateway: FakeGateway
) -> None:
    gateway.audit_service.lineage = a_lineage()
    sign_in(browser)
    page = browser.get("/audit/lineage", params={"kind": "job", "id": "j-1", "direction": "up"}).text
    (_, request), *_ = gateway.audit_service.calls
    assert request.direction == audit_pb2.LINEAGE_DIRECTION_UPSTREAM
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert "<b>" not in page
    assert "&lt;b&gt;digits&lt;/b&gt; &amp; co" in svg
    nodes = [("job", "j-1"), ("dataset_version", "ds-1/3"), ("model_version", "mv-1"), ("edge_server", "e-1")]
    for kind, node_id in nodes:
        assert f'data-kind="{kind}" data-node-id="{node_id}"' in svg
    assert 'href="/jobs/j-1"' in svg
    assert 'href="/models/mv-1"' in svg
    assert len(re.findall(r"<line ", svg)) == 2
    listing = page[page.index('data-testid="lineage-list"') :]
    assert "/audit/lineage?kind=dataset_version&amp;id=ds-1%2F3" in listing


def test_a_refused_lineage_shows_the_refusal(browser: TestClient, gateway: FakeGateway) -> None:
    gateway.audit_service.org_admin_of = "acme"
    sign_in(browser, token_for("olga", "acme", ("org_admin",)))
    page = browser.get("/audit/lineage", params={"kind": "job", "id": "j-9", "org": "globex"})
    assert page.status_code == 403
    assert "PERMISSION_DENIED" in page.text
    assert "<svg" not in page.text


class TestLineageLayout:
    def test_nodes_stand_in_columns_from_samples_to_edge_servers(self) -> None:
        lineage = a_lineage()
        graph = lay_out(lineage.start, list(lineage.nodes), list(lineage.edges))
        x = {n.kind: n.x for n in graph.nodes}
        step = BOX_W + COLUMN_GAP
        columns = (x["dataset_version"], x["job"], x["model_version"], x["edge_server"])
        assert columns == (0, step, 2 * step, 3 * step)
        headings = [name for name, _ in graph.headings]
        assert headings == ["Dataset versions", "Jobs", "Model versions", "Edge servers"]

    def test_an_edge_whose_other_end_is_on_another_page_is_not_drawn(self) -> None:
        lineage = a_lineage()
        edge = audit_pb2.LineageEdge(
            from_kind="sample", from_id="s-1", to_kind="dataset_version", to_id="ds-1/3", relation="contains"
        )
        graph = lay_out(lineage.start, list(lineage.nodes), [*lineage.edges, edge])
        assert len(graph.edges) == 2
