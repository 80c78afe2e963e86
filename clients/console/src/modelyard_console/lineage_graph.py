"""The lineage graph laid out for an SVG the template draws: one column per kind of node, upstream
(samples) on the left, downstream (edge servers) on the right; an edge a line between two boxes.

Only positions and texts are computed here; the template writes them into the SVG, autoescaped, so a
label a person typed (a file name, a job's name) can never become markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from modelyard.v1 import audit_pb2

# Upstream first: what a thing was made from stands left of it.
COLUMNS = ("sample", "dataset_version", "job", "model_version", "deployment", "edge_server")
KIND_NAMES = {
    "sample": "Samples",
    "dataset_version": "Dataset versions",
    "job": "Jobs",
    "model_version": "Model versions",
    "deployment": "Deployments",
    "edge_server": "Edge servers",
}
BOX_W, BOX_H = 180, 40
COLUMN_GAP, ROW_GAP, TOP = 60, 16, 30
MAX_LABEL = 24  # characters in a box; the whole label is in its <title> and in the text list


@dataclass(frozen=True, slots=True)
class PlacedNode:
    """A node's box: where it is, what it says, where its links go."""

    kind: str
    node_id: str
    label: str
    short_label: str
    short_id: str
    org_id: str
    acts: tuple[str, ...]
    x: int
    y: int
    page_url: str  # its own page in the console, "" when it has none
    lineage_url: str
    is_start: bool


@dataclass(frozen=True, slots=True)
class PlacedEdge:
    """A line from the right side of what `to` was made from to the left side of `to`."""

    x1: int
    y1: int
    x2: int
    y2: int
    relation: str
    text: str


@dataclass(frozen=True, slots=True)
class LineageGraph:
    """The SVG's size, its column headings, boxes and lines."""

    width: int
    height: int
    headings: tuple[tuple[str, int], ...]
    nodes: tuple[PlacedNode, ...]
    edges: tuple[PlacedEdge, ...]


def lineage_url(kind: str, node_id: str, org_id: str = "") -> str:
    """The console's lineage page from one node."""
    query = {"kind": kind, "id": node_id} | ({"org": org_id} if org_id else {})
    return "/audit/lineage?" + urlencode(query)


def page_url(kind: str, node_id: str) -> str:
    """The node's own page in the console, when it has one."""
    if kind == "job":
        return f"/jobs/{quote(node_id, safe='')}"
    if kind == "model_version":
        return f"/models/{quote(node_id, safe='')}"
    if kind == "dataset_version":
        return f"/datasets/{quote(node_id.partition('/')[0], safe='')}"
    if kind in ("deployment", "edge_server"):
        return "/fleet"
    return ""


def _shorten(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _acts(node: audit_pb2.LineageNode) -> tuple[str, ...]:
    return tuple(f"{a.act} by {a.subject}" + (f" ({a.detail})" if a.detail else "") for a in node.acts)


def lay_out(
    start: audit_pb2.LineageNode, nodes: list[audit_pb2.LineageNode], edges: list[audit_pb2.LineageEdge]
) -> LineageGraph:
    """Boxes in columns by kind (each column top to bottom in the order the walk found them)."""
    unique = {(n.kind, n.id): n for n in [start, *nodes]}
    used = [k for k in COLUMNS if any(kind == k for kind, _ in unique)]
    used += sorted({kind for kind, _ in unique} - set(COLUMNS))  # a kind this console does not know
    rows: dict[str, int] = {}
    placed: dict[tuple[str, str], PlacedNode] = {}
    for (kind, node_id), node in unique.items():
        row = rows.get(kind, 0)
        rows[kind] = row + 1
        placed[(kind, node_id)] = PlacedNode(
            kind, node_id, node.label, _shorten(node.label or node_id), _shorten(node_id), node.org_id,
            _acts(node), used.index(kind) * (BOX_W + COLUMN_GAP), TOP + row * (BOX_H + ROW_GAP),
            page_url(kind, node_id), lineage_url(kind, node_id), (kind, node_id) == (start.kind, start.id),
        )  # fmt: skip
    lines = [_line(placed, e) for e in edges]
    return LineageGraph(
        width=max(1, len(used)) * (BOX_W + COLUMN_GAP) - COLUMN_GAP,
        height=TOP + max(rows.values(), default=1) * (BOX_H + ROW_GAP),
        headings=tuple((KIND_NAMES.get(k, k), i * (BOX_W + COLUMN_GAP)) for i, k in enumerate(used)),
        nodes=tuple(placed.values()),
        edges=tuple(line for line in lines if line is not None),
    )


def _line(placed: dict[tuple[str, str], PlacedNode], edge: audit_pb2.LineageEdge) -> PlacedEdge | None:
    made_from, made = placed.get((edge.from_kind, edge.from_id)), placed.get((edge.to_kind, edge.to_id))
    if made_from is None or made is None:  # an end on a later page
        return None
    left, right = sorted((made_from, made), key=lambda n: n.x)
    return PlacedEdge(
        left.x + BOX_W, left.y + BOX_H // 2, right.x, right.y + BOX_H // 2, edge.relation,
        f"{made.kind} {made.node_id} made from {made_from.kind} {made_from.node_id} ({edge.relation})",
    )  # fmt: skip
