"""Where dataset-svc spends an upload: py-spy samples of the service, sorted into named kinds of work.

Diagnostic only (`dataset_upload_bench.py --py-spy`): py-spy shares the machine's CPUs with the
service, so a profiled run's timings are not the benchmark's.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"
RATE_HZ = 200
_ATTACH_S = 0.5


# The first rule whose marker appears in a sample's stack (outermost frame first) names its kind.
# A marker is "function (file" as py-spy writes a frame, or "file:line" for one statement.
def _staging_line(statement: str) -> str:
    """ "modelyard_blobs/staging.py:<line>" of a statement in StagingWriter.write (found, not hard-coded)."""
    spec = importlib.util.find_spec("modelyard_blobs.staging")
    if spec is None or spec.origin is None:
        return "(not found)"
    lines = [line.strip() for line in Path(spec.origin).read_text().splitlines()]
    return f"modelyard_blobs/staging.py:{lines.index(statement) + 1}" if statement in lines else "(not found)"


KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SHA-256 of the chunks (staging)", (_staging_line("self._hash.update(chunk)"),)),
    ("writing the chunks to staging", (_staging_line("self._file.write(chunk)"),)),
    ("staging (write + SHA-256)", ("write (modelyard_blobs/staging.py",)),
    ("inspection (Pillow verify + decode, signatures)", ("inspect_file (",)),
    ("promotion into the blob store (rename)", ("_promote (",)),
    ("event store appends (ledger + SamplesAdded)", ("append (modelyard_events",)),
    ("loading the dataset and ledger (events)", ("dataset (modelyard_dataset/app/loading", "ledger (")),
    ("upload planning and events (domain)", ("plan_upload (", "add_samples (")),
    ("creating staging files (mkstemp)", ("new_file (modelyard_blobs",)),
    ("receiving messages (gRPC, protobuf)", ("_parts (", "_stage (")),
    ("handing work to threads (asyncio.to_thread)", ("call_soon_threadsafe (", "to_thread (")),
    ("PostgreSQL client (event store, views)", ("psycopg", "sqlalchemy")),
    ("relay and consumers (aiokafka)", ("aiokafka",)),
)
# A sample whose innermost frame is one of these was waiting (py-spy's idle check misses some).
WAITING = ("select (selectors.py", "_worker (concurrent/futures/thread.py", "Thread.run (threading.py")


@contextmanager
def py_spy(pid: int, raw_output: Path) -> Iterator[None]:
    """Sample process `pid` with py-spy (no idle stacks) during the block into `raw_output` (raw)."""
    command = [str(PY_SPY), "record", "--pid", str(pid), "--format", "raw", "--rate", str(RATE_HZ)]
    command += ["--nonblocking", "--output", str(raw_output)]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(_ATTACH_S)
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        _, errors = recorder.communicate(timeout=60)
        if not raw_output.exists():
            raise RuntimeError(f"py-spy wrote no profile: {errors.decode(errors='replace')[-2000:]}")


def kinds_of_work(raw_outputs: list[Path]) -> dict[str, float]:
    """Seconds of samples per kind of work (samples / rate; threads add up), over the profiles given."""
    samples: Counter[str] = Counter()
    for raw in raw_outputs:
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack:
                samples[_kind(stack)] += int(count)
    return {kind: round(n / RATE_HZ, 2) for kind, n in samples.most_common()}


def _kind(stack: str) -> str:
    leaf = stack.rpartition(";")[2]
    if any(marker in leaf for marker in WAITING):
        return "waiting (event loop poll, idle worker threads)"
    for kind, markers in KINDS:
        if any(marker in stack for marker in markers):
            return kind
    return "other (event loop, gRPC core, logging …)"
