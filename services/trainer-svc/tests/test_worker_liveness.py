"""The worker's liveness file and the probe's check of it."""

import asyncio
import os
from pathlib import Path

import pytest

from modelyard_trainer.worker import liveness


def test_a_fresh_file_is_alive_a_stale_or_missing_one_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "alive"
    assert "does not exist" in (liveness.problem(path, 60) or "")
    assert liveness.main([str(path)]) == 1
    path.touch()
    touched = path.stat().st_mtime
    assert liveness.problem(path, 60, now=touched + 59) is None
    assert "61 s ago" in (liveness.problem(path, 60, now=touched + 61) or "")
    assert liveness.main([str(path), "--max-age-s", "60"]) == 0
    os.utime(path, (touched - 120, touched - 120))
    assert liveness.main([str(path), "--max-age-s", "60"]) == 1
    assert "has stalled" in capsys.readouterr().err


async def test_the_beat_touches_the_file_until_stopped_then_removes_it(tmp_path: Path) -> None:
    path, stop = tmp_path / "run" / "alive", asyncio.Event()
    beating = asyncio.create_task(liveness.beat(path, stop, every_s=0.05))
    await asyncio.sleep(0.02)
    assert path.exists()
    os.utime(path, (0, 0))  # as if the loop had stalled since 1970
    await asyncio.sleep(0.15)
    assert liveness.problem(path, 1) is None  # touched again by the next beat
    stop.set()
    await asyncio.wait_for(beating, 1)
    assert not path.exists()
