"""The dataset upload benchmark's results: per workload and side, as JSON and as markdown tables."""

from __future__ import annotations

import json
import os
import platform as host
import statistics
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from upload_files import Workload

RESULTS = Path(__file__).resolve().parent / "results"
MB = 10**6  # decimal megabytes, as disks and plans are sold
PEERS = ("copy2", "copy2 + fsync")
PG_SETTINGS = ("server_version", "fsync", "synchronous_commit")
LIBRARIES = ("grpcio", "protobuf", "pillow", "numpy", "sqlalchemy", "psycopg")


@dataclass
class Measured:
    """One workload's files and each side's seconds per run."""

    workload: Workload
    runs_s: dict[str, list[float]]
    files: int = 0
    bytes: int = 0
    floor: dict[str, float] = field(default_factory=dict)
    ours_tail_s: list[float] = field(default_factory=list)  # per run: last message sent → reply

    def median_s(self, side: str) -> float:
        """The median of the side's runs."""
        return statistics.median(self.runs_s[side])

    def samples_per_s(self, side: str) -> float:
        """Files per second at the median."""
        return self.files / self.median_s(side)

    def mb_per_s(self, side: str) -> float:
        """Decimal megabytes per second at the median."""
        return self.bytes / MB / self.median_s(side)

    def title(self) -> str:
        """E.g. "2,000 PNG images (12.4 kB each), 4 calls of 500"."""
        w, calls = self.workload, -(-self.files // self.workload.files_per_call)
        kind = "MP4 videos" if w.video_bytes else "PNG images"
        each = (
            f"{self.bytes / self.files / 1000:.1f} kB" if not w.video_bytes else f"{w.video_bytes >> 20} MiB"
        )
        return f"{self.files:,} {kind} ({each} each), {calls} call(s) of ≤ {w.files_per_call:,}"

    def as_json(self) -> dict[str, Any]:
        """Everything measured, with the rates at the median and ours / each peer."""
        sides = {
            side: {
                "runs_s": [round(s, 4) for s in runs],
                "median_s": round(self.median_s(side), 4),
                "samples_per_s": round(self.samples_per_s(side), 1),
                "mb_per_s": round(self.mb_per_s(side), 2),
            }
            for side, runs in self.runs_s.items()
        }
        ratios = {f"ours / {peer}": round(self.median_s(peer) / self.median_s("ours"), 4) for peer in PEERS}
        return {
            "workload": self.workload.key,
            "title": self.title(),
            "files": self.files,
            "bytes": self.bytes,
            "files_per_call": self.workload.files_per_call,
            "sides": sides,
            "ratios": ratios,
            "ours_after_last_message_s": [round(s, 4) for s in self.ours_tail_s],
            "work_floor_one_thread_s": {k: round(v, 4) for k, v in self.floor.items()},
        }


def write_results(machine: dict[str, Any], parameters: dict[str, Any], measured: list[Measured]) -> str:
    """Write datasets.json and datasets.md under bench/results; return the markdown."""
    RESULTS.mkdir(exist_ok=True)
    document = {"machine": machine, "parameters": parameters, "workloads": [m.as_json() for m in measured]}
    (RESULTS / "datasets.json").write_text(json.dumps(document, indent=2) + "\n")
    markdown = _markdown(machine, parameters, measured)
    (RESULTS / "datasets.md").write_text(markdown)
    return markdown


def _markdown(machine: dict[str, Any], parameters: dict[str, Any], measured: list[Measured]) -> str:
    pg = machine["postgres"]
    load = machine["load_average_at_start"][0], machine["load_average_at_end"][0]
    lines = [
        "# Dataset upload: dataset-svc's UploadSamples vs copying the same files on local disk",
        "",
        f"{machine['cpu_count']} CPUs ({machine['cpu_model']}), {machine['filesystem']}, Python "
        f"{machine['python']}, PostgreSQL {pg['server_version']} (fsync {pg['fsync']}, synchronous_commit "
        f"{pg['synchronous_commit']}). Load average (1 min) {load[0]} at the start, {load[1]} at the end.",
        f"Median of {parameters['runs']} run(s); MB = 10^6 bytes.",
        "",
        "| workload | measure | ours | copy2 | ours / copy2 | copy2 + fsync | ours / (copy2 + fsync) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, m in zip("AB", measured, strict=False):
        rates = [("samples/s", m.samples_per_s), ("MB/s", m.mb_per_s)]
        for measure, rate in rates if not m.workload.video_bytes else rates[::-1]:
            cells = [f"{rate(side):,.1f}" for side in ("ours", *PEERS)]
            ratios = [f"{rate('ours') / rate(peer):.3f}" for peer in PEERS]
            lines.append(
                f"| {label}: {m.title()} | {measure} | {cells[0]} | {cells[1]} | {ratios[0]} "
                f"| {cells[2]} | {ratios[1]} |"
            )
    lines += ["", "| workload | side | seconds per run | median s |", "|---|---|---|---:|"]
    for label, m in zip("AB", measured, strict=False):
        for side, runs in m.runs_s.items():
            shown = ", ".join(f"{s:.3f}" for s in runs)
            lines.append(f"| {label} | {side} | {shown} | {m.median_s(side):.3f} |")
        if m.ours_tail_s:
            shown = ", ".join(f"{s:.3f}" for s in m.ours_tail_s)
            tail = statistics.median(m.ours_tail_s)
            lines.append(f"| {label} | ours: last message sent → reply | {shown} | {tail:.3f} |")
    lines += ["", "Work floor: this process, one thread, on run 1's (cached) files, no gRPC:", ""]
    for label, m in zip("AB", measured, strict=False):
        floor = ", ".join(f"{k.removesuffix('_s').replace('_', ' ')} {v:.3f} s" for k, v in m.floor.items())
        lines.append(f"- {label}: {floor}")
    lines += ["", *_notes()]
    return "\n".join(lines) + "\n"


def _notes() -> list[str]:
    return [
        "Ours streams each file in 1 MiB chunks over one gRPC channel, one call at a time, into a new",
        'dataset; the clock runs from opening the first file to the last reply ("last message sent →',
        "reply\": the server's work after the stream, summed over the calls). The server stages and",
        "hashes each chunk, fsyncs and inspects every file (images decoded by Pillow), renames it into",
        "the local-folder blob store and fsyncs each folder it touched, then appends the ledger charge",
        "and the samples' event to PostgreSQL (fsync on). copy2 does not fsync; copy2 + fsync fsyncs",
        "every copied file and then the folder. All sides read the same page-cached source files and",
        "write to the same filesystem; `sync` runs (untimed) before each side.",
    ]


def machine(database_url: str, workdir: Path, load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    """CPUs and their load, Python, the filesystem under `workdir`, PostgreSQL's durability settings,
    library versions."""
    with psycopg.connect(database_url) as conn:
        sql = "SELECT n, current_setting(n) FROM unnest(%s::text[]) AS n"
        settings: dict[str, str] = dict(conn.execute(sql, (list(PG_SETTINGS),)).fetchall())
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        # Other programs on the machine (other tenants, other test runs) skew every side: say how busy it was.
        "load_average_at_start": [round(x, 2) for x in load_at_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "platform": host.platform(),
        "python": host.python_version(),
        "filesystem": _filesystem(workdir),
        "postgres": settings,
        "libraries": {name: version(name) for name in LIBRARIES},
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return host.processor() or "unknown"


def _filesystem(path: Path) -> str:
    # The longest mount point that contains `path` is the filesystem it lives on.
    resolved, best = str(path.resolve()), ("", "unknown", "unknown")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount, kind = line.split()[:3]
        if (resolved + "/").startswith(mount.rstrip("/") + "/") and len(mount) > len(best[0]):
            best = (mount, kind, device)
    return f"{best[1]} on {best[2]}"
