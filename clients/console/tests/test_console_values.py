"""How figures read: durations, badges with icon and word, a job's progress, chart data and CSV."""

from __future__ import annotations

import csv
import io

import pytest
from console_fakes import a_job

from modelyard.v1 import jobs_pb2
from modelyard_console.badges import badge_for
from modelyard_console.job_view import job_view
from modelyard_console.live import sse_event
from modelyard_console.metrics_series import Run, chart_data, metrics_csv
from modelyard_console.values import format_duration, format_rate


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "-"), (0, "0s"), (45.4, "45s"), (185, "3m 05s"), (7620, "2h 07m")]
)
def test_durations_read_like_the_cli(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_rates_are_short_and_unknown_is_a_dash() -> None:
    assert (format_rate(1234.56), format_rate(None), format_rate(0.0)) == ("1,234.6/s", "-", "-")


@pytest.mark.parametrize(
    "state", ["pending", "queued", "running", "paused", "completed", "failed", "cancelled"]
)
def test_every_job_state_has_an_icon_and_its_word(state: str) -> None:
    badge = badge_for(state)
    assert badge.icon
    assert badge.word == state
    assert badge.tone


def test_states_differ_by_icon_not_only_by_colour() -> None:
    icons = {badge_for(s).icon for s in ("queued", "running", "paused", "completed", "failed", "cancelled")}
    assert len(icons) == 6


@pytest.mark.parametrize(
    "state", ["queued", "running", "paused", "completed", "failed", "cancelled", "testing", "released"]
)
def test_badge_icons_are_plain_symbols_not_emoji(state: str) -> None:
    # Emoji (⏳, 🚀 …) need an emoji font that servers and kiosks often lack: they show as empty boxes.
    code = ord(badge_for(state).icon)
    assert code < 0x1F000
    assert not 0x231A <= code <= 0x23FF


def test_a_running_job_ticks_and_shows_its_figures() -> None:
    job = a_job("j-1", jobs_pb2.JOB_STATE_RUNNING, progress=0.425, epoch=2, step=10, steps_per_epoch=40)
    job.started_at.FromSeconds(1_700_000_000)
    view = job_view(job)
    assert (view.percent_text, view.epoch_text, view.step_text) == ("42%", "2/3", "10/40")
    assert view.ticking
    assert view.started_at == "2023-11-14T22:13:20Z"
    assert view.can_pause
    assert view.can_cancel
    assert not view.can_resume


def test_a_completed_job_shows_a_full_bar_and_allows_no_cancel() -> None:
    view = job_view(a_job("j-1", jobs_pb2.JOB_STATE_COMPLETED))
    assert (view.percent, view.finished, view.can_cancel, view.ticking) == (100.0, True, False, False)


def _epoch(n: int, loss: float, attempt: int = 1, accuracy: float | None = None) -> jobs_pb2.EpochMetrics:
    return jobs_pb2.EpochMetrics(
        epoch=n, train_loss=loss, val_loss=loss + 0.1, val_accuracy=accuracy, attempt=attempt
    )


def test_runs_of_different_lengths_share_one_chart() -> None:
    data = chart_data([Run("a", [_epoch(1, 1.0), _epoch(2, 0.5)]), Run("b", [_epoch(1, 0.9, accuracy=0.8)])])
    assert data["loss"]["x"] == [1, 2]
    labels = [s["label"] for s in data["loss"]["series"]]
    assert labels == ["a train loss", "a val loss", "b train loss", "b val loss"]
    assert data["loss"]["series"][2]["values"] == [0.9, None]
    assert data["accuracy"]["series"][1]["values"] == [0.8, None]


def test_an_epoch_run_again_by_a_later_attempt_counts_once() -> None:
    data = chart_data([Run("a", [_epoch(1, 1.0), _epoch(1, 0.7, attempt=2)])])
    assert data["loss"]["series"][0]["values"] == [0.7]


def test_the_csv_has_every_attempt_and_the_tasks_own_metrics() -> None:
    first = _epoch(1, 1.0, accuracy=0.5)
    first.metrics["f1"] = 0.4
    rows = list(csv.DictReader(io.StringIO(metrics_csv([first, _epoch(1, 0.8, attempt=2)]))))
    assert [(r["attempt"], r["train_loss"], r["f1"]) for r in rows] == [("1", "1.0", "0.4"), ("2", "0.8", "")]
    assert rows[1]["val_accuracy"] == ""


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("https://evil.example")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
)
def test_a_metric_name_a_spreadsheet_would_run_is_written_as_text(name: str) -> None:
    epoch = _epoch(1, 1.0)
    epoch.metrics[name] = 0.4
    header = next(csv.reader(io.StringIO(metrics_csv([epoch]))))
    assert header[-1] == "'" + name


def test_a_plain_metric_name_and_negative_values_are_written_as_they_are() -> None:
    epoch = _epoch(1, -1.5)
    epoch.metrics["f1"] = -0.25
    rows = list(csv.DictReader(io.StringIO(metrics_csv([epoch]))))
    assert (rows[0]["train_loss"], rows[0]["f1"]) == ("-1.5", "-0.25")


def test_an_event_carries_each_html_line_as_data() -> None:
    assert sse_event("job", "<p>\na</p>\n") == "event: job\ndata: <p>\ndata: a</p>\n\n"
