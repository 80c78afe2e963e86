"""Comparisons of ours against a peer, written as JSON and as a markdown table."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workloads import Measurement


@dataclass(frozen=True)
class Comparison:
    """One table row: our throughput against the peer's on the same work."""

    row: str
    peer_name: str
    ours: Measurement
    peer: Measurement
    target_ratio: float | None  # None: shown beside the others, no target set

    @property
    def ratio(self) -> float:
        return self.ours.events_per_s / self.peer.events_per_s

    @property
    def met(self) -> bool | None:
        return None if self.target_ratio is None else self.ratio >= self.target_ratio

    def as_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "peer_name": self.peer_name,
            "ours": _json(self.ours),
            "peer": _json(self.peer),
            "ratio": round(self.ratio, 3),
            "target_ratio": self.target_ratio,
            "met": self.met,
        }


def markdown_table(comparisons: list[Comparison]) -> str:
    """The results as a markdown table, one line per comparison."""
    lines = [
        "| row | ours events/s | peer events/s | ratio | target | met? |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for c in comparisons:
        target = "—" if c.target_ratio is None else f"≥ {c.target_ratio}×"
        met = "—" if c.met is None else "yes" if c.met else "NO"
        lines.append(
            f"| {c.row} (vs {c.peer_name}) | {c.ours.events_per_s:,.0f} | {c.peer.events_per_s:,.0f} "
            f"| {c.ratio:.2f}× | {target} | {met} |"
        )
    return "\n".join(lines) + "\n"


def write_results(
    directory: Path, machine: dict[str, Any], parameters: dict[str, Any], comparisons: list[Comparison]
) -> str:
    """Write events.json and events.md under `directory`; return the markdown table."""
    directory.mkdir(parents=True, exist_ok=True)
    table = markdown_table(comparisons)
    document = {
        "machine": machine,
        "parameters": parameters,
        "comparisons": [c.as_json() for c in comparisons],
    }
    (directory / "events.json").write_text(json.dumps(document, indent=2) + "\n")
    (directory / "events.md").write_text(table)
    return table


def _json(measurement: Measurement) -> dict[str, Any]:
    return {
        "events": measurement.events,
        "seconds": round(measurement.seconds, 4),
        "events_per_s": round(measurement.events_per_s, 1),
        "runs_s": [round(seconds, 4) for seconds in measurement.runs_s],
    }
