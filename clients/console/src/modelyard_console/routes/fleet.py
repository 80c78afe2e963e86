"""Fleet: deploy-svc's edge servers (online, running vs intended version, drift, the deployment in
progress) and its rollouts with their waves, live over SSE like the dashboard. Read-only in this version:
rollouts are started, cancelled and rolled back with `yard deploy …`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.v1 import deploy_pb2
from modelyard_cli.connection import DeploySvc
from modelyard_console.fleet_view import EdgeServerView, RolloutView, edge_server_view, rollout_view
from modelyard_console.live import live_stream, polled_events
from modelyard_console.web import console_of, fragment, refusal_html, render, signed_in

FLEET_PAGE = 200
ROLLOUTS_PAGE = 20


@dataclass(frozen=True, slots=True)
class FleetFigures:
    """What the Fleet page shows at one moment."""

    servers: list[EdgeServerView]
    rollouts: list[RolloutView]

    @property
    def online(self) -> int:
        """How many servers heartbeat."""
        return sum(s.online for s in self.servers)

    @property
    def drifting(self) -> int:
        """How many servers run another version than intended."""
        return sum(s.drift for s in self.servers)


async def read_fleet(svc: DeploySvc) -> FleetFigures:
    """The servers and the latest rollouts, asked for together."""
    servers, rollouts = await asyncio.gather(
        svc.deploy.ListEdgeServers(deploy_pb2.ListEdgeServersRequest(page_size=FLEET_PAGE)),
        svc.deploy.ListRollouts(deploy_pb2.ListRolloutsRequest(page_size=ROLLOUTS_PAGE)),
    )
    return FleetFigures(
        servers=[edge_server_view(s) for s in servers.servers],
        rollouts=[rollout_view(r) for r in rollouts.rollouts],
    )


async def fleet_page(request: Request) -> Response:
    """The fleet, its live part filled in already."""
    session, token = signed_in(request)
    async with console_of(request).gateway.deploy(token) as svc:
        figures = await read_fleet(svc)
    return render(request, "fleet.html", session, title="Fleet", page="fleet", figures=figures)


async def fleet_stream(request: Request) -> Response:
    """The fleet's live part as server-sent events."""
    session, token = signed_in(request)
    console = console_of(request)

    async def read() -> str:
        async with console.gateway.deploy(token) as svc:
            figures = await read_fleet(svc)
        return fragment(request, "_fleet_live.html", figures=figures)

    events = polled_events(request, "fleet", read, console.settings.refresh_s, refusal_html(request))
    return live_stream(request, session, "fleet", events)


routes = [
    Route("/fleet", fleet_page, methods=["GET"]),
    Route("/live/fleet", fleet_stream, methods=["GET"]),
]
