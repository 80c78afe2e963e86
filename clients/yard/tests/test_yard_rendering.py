"""Rendering: protobuf messages → rich tables and watch lines, checked on hand-built messages."""

from __future__ import annotations

import io
import re

from rich.console import Console, RenderableType
from yard_fakes import UPDATED_AT, epoch, event, job

from modelyard.v1 import jobs_pb2
from modelyard_cli.render.jobs import (
    events_table,
    job_details,
    job_line,
    jobs_table,
    metrics_table,
    queue_table,
)
from modelyard_cli.render.trainers import trainers_table
from modelyard_cli.render.values import format_duration, format_time, parse_state, state_name
from modelyard_cli.render.watch import epoch_line, final_lines, progress_view, state_line


def text_of(renderable: RenderableType) -> str:
    """What a wide terminal would show, without colors."""
    console = Console(width=220, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def rows_of(text: str) -> list[list[str]]:
    """The cells of each body row of a rendered table."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]


def details_of(text: str) -> dict[str, str]:
    """Label → value of a rendered two-column details grid."""
    pairs = (re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in text.splitlines() if line.strip())
    return {pair[0]: pair[1] if len(pair) > 1 else "" for pair in pairs}


def row_of(text: str, first_cell: str) -> list[str]:
    """The cells of the table row whose first cell is `first_cell`."""
    return next(row for row in rows_of(text) if row[0] == first_cell)


class TestJobTables:
    def test_job_list_has_one_row_per_job_with_every_column(self) -> None:
        running = job("job-7", state=jobs_pb2.JOB_STATE_RUNNING, progress=0.425, trainer_id="trainer-a")
        queued = job("job-8", queue_position=3, priority=90)
        text = text_of(jobs_table([running, queued]))
        assert row_of(text, "job-7") == [
            "job-7", "digits-cnn", "acme", "running", "50", "1", "42.5%", "-", "trainer-a",
            "2026-01-01 00:00:00Z",
        ]  # fmt: skip
        assert row_of(text, "job-8")[3:8] == ["queued", "90", "1", "-", "3"]

    def test_names_with_brackets_are_shown_as_written_not_as_markup(self) -> None:
        text = text_of(jobs_table([job(name="[bold]net[/bold] v2")]))
        assert "[bold]net[/bold] v2" in text

    def test_queue_lists_positions_in_order(self) -> None:
        entries = [jobs_pb2.QueueEntry(position=n, job=job(f"job-{n}")) for n in (1, 2)]
        text = text_of(queue_table(entries))
        assert row_of(text, "1")[:2] == ["1", "job-1"]
        assert row_of(text, "2")[:2] == ["2", "job-2"]

    def test_details_show_artifact_failure_and_hyperparameters(self) -> None:
        detailed = job(
            state=jobs_pb2.JOB_STATE_FAILED,
            failure_reason="dataset missing",
            artifact_sha256="f00d",
            version=9,
        )
        detailed.hyperparameters.update({"lr": 0.01, "epochs": 3})
        text = text_of(job_details(detailed))
        assert "failed (attempt 1, version 9)" in text
        assert "dataset missing" in text
        assert "f00d" in text
        assert '{"epochs": 3.0, "lr": 0.01}' in text

    def test_details_of_a_fine_tuned_job_show_its_base_and_output_versions(self) -> None:
        tuned = job(base_version_id="mv-7", output_version_id="mv-8", description="this month's scans")
        details = details_of(text_of(job_details(tuned)))
        assert (details["base version"], details["output version"]) == ("mv-7", "mv-8")
        assert details["description"] == "this month's scans"

    def test_details_of_an_evaluation_show_the_version_it_measures(self) -> None:
        details = details_of(text_of(job_details(job(kind="evaluation", model_version_id="mv-7"))))
        assert (details["kind"], details["evaluates version"]) == ("evaluation", "mv-7")

    def test_details_of_a_job_trained_from_scratch_name_no_versions(self) -> None:
        details = details_of(text_of(job_details(job(kind="training"))))
        assert not {"kind", "description", "base version", "output version", "evaluates version"} & set(
            details
        )

    def test_details_of_a_running_job_show_its_start_elapsed_time_and_position(self) -> None:
        running = job(
            state=jobs_pb2.JOB_STATE_RUNNING, started_at=UPDATED_AT, elapsed_s=125.0, epoch=2, step=17,
            steps_per_epoch=40, loss=0.25, samples_per_s=1500.0, device="cpu",
        )  # fmt: skip
        details = details_of(text_of(job_details(running)))
        assert details["started"] == format_time(UPDATED_AT)
        assert details["elapsed"] == format_duration(125.0)
        assert details["position"].startswith("epoch 2, step 17/40, loss 0.25")
        assert details["position"].endswith("on cpu")
        assert "ended" not in details

    def test_details_of_a_starting_job_say_what_its_run_is_doing(self) -> None:
        starting = job(
            state=jobs_pb2.JOB_STATE_RUNNING, phase="loading_data", phase_message="loading the data"
        )
        details = details_of(text_of(job_details(starting)))
        assert details["phase"] == "loading_data: loading the data"
        assert "position" not in details

    def test_details_of_a_queued_job_have_no_position_and_no_start(self) -> None:
        details = details_of(text_of(job_details(job())))
        assert "position" not in details
        assert (details["started"], details["elapsed"]) == (format_time(None), format_duration(None))

    def test_metrics_table_shows_each_epoch_and_the_tasks_other_metrics(self) -> None:
        regression = epoch(2, metrics={"val_mae": 0.125, "val_r2": 0.9}, gpu_utilization_pct=73.0)
        regression.ClearField("val_accuracy")
        first, second = rows_of(text_of(metrics_table([epoch(1), regression])))
        assert first == ["1", "1", "1.0000", "0.9000", "81.0%", "-", "1,501.0 samples/s", "4s", "-"]
        assert second[1] == "2"
        assert second[4:6] == ["-", "val_mae=0.1250 val_r2=0.9000"]  # no accuracy for a regressor
        assert second[8] == "73.0%"

    def test_events_show_type_time_and_actor_with_roles(self) -> None:
        text = text_of(events_table([event(1, "JobCreated"), event(2, "JobCancelRequested", subject="bob")]))
        assert row_of(text, "2") == ["2", "JobCancelRequested", "2026-01-01 00:00:00Z", "bob (super_admin)"]

    def test_job_line_names_state_priority_position_and_version(self) -> None:
        assert job_line(job(queue_position=4)) == "job-1  queued  priority 50  queue position 4  version 2"


class TestTrainersTable:
    def test_shows_liveness_slots_gpus_jobs_and_heartbeat(self) -> None:
        gpu = jobs_pb2.Trainer(
            trainer_id="t-gpu", alive=True, slots_total=2, slots_free=1, gpus=["H100"], job_ids=["job-1"]
        )
        gpu.last_heartbeat_at.FromSeconds(1_767_225_600)
        cpu = jobs_pb2.Trainer(trainer_id="t-cpu", alive=False, slots_total=1)
        text = text_of(trainers_table([gpu, cpu]))
        assert row_of(text, "t-gpu") == ["t-gpu", "yes", "1/2", "H100", "job-1", "2026-01-01 00:00:00Z"]
        assert row_of(text, "t-cpu") == ["t-cpu", "no", "0/1", "cpu", "-", "-"]


class TestWatchLines:
    def test_state_lines_say_position_trainer_or_reason(self) -> None:
        assert state_line(job(queue_position=2)) == "job-1 is queued (queue position 2)"
        running = job(state=jobs_pb2.JOB_STATE_RUNNING, trainer_id="t-1", attempt=2)
        assert state_line(running) == "job-1 is running (attempt 2, trainer t-1)"
        failed = job(state=jobs_pb2.JOB_STATE_FAILED, failure_reason="OOM")
        assert state_line(failed) == "job-1 is failed: OOM"

    def test_epoch_line_has_losses_accuracy_and_speed(self) -> None:
        line = epoch_line(epoch(2, samples_per_s=1234.5), epochs_total=3)
        assert line == "epoch 2/3  train loss 0.5000  val loss 0.4500  val acc 82.0%  1,234.5 samples/s"

    def test_progress_follows_the_job_and_the_latest_step_report(self) -> None:
        running = job(
            state=jobs_pb2.JOB_STATE_RUNNING, progress=0.25, epochs_done=1, epochs_total=4, eta_s=90
        )
        assert progress_view(running, None).percent == 25.0
        assert progress_view(running, None).description == "epoch 1/4"
        assert progress_view(running, None).eta == "1m 30s"
        step = jobs_pb2.JobProgress(epoch=2, step=30, steps_total=60, samples_per_s=800.0, eta_s=65.0)
        view = progress_view(running, step)
        assert (view.description, view.speed, view.eta) == (
            "epoch 2/4 · step 30/60",
            "800.0 samples/s",
            "1m 05s",
        )

    def test_a_completed_job_fills_the_bar(self) -> None:
        assert progress_view(job(state=jobs_pb2.JOB_STATE_COMPLETED), None).percent == 100.0

    def test_final_lines_of_a_completed_job_name_the_artifact_and_its_hash(self) -> None:
        done = job(
            state=jobs_pb2.JOB_STATE_COMPLETED, epochs_done=2, last_epoch=epoch(2), artifact_uri="file:///m.pt",
            artifact_sha256="ab" * 32,
        )  # fmt: skip
        lines = final_lines(done)
        assert lines[0] == "job-1 completed after 2/2 epochs (attempt 1)"
        assert lines[1].startswith("last epoch 2/2  train loss 0.5000")
        assert lines[2:] == ["artifact file:///m.pt", f"sha256   {'ab' * 32}"]

    def test_final_lines_of_a_failed_job_give_the_reason(self) -> None:
        lines = final_lines(job(state=jobs_pb2.JOB_STATE_FAILED, failure_reason="loss is NaN"))
        assert lines[-1] == "failure  loss is NaN"
        assert not any(line.startswith("artifact") for line in lines)


class TestValues:
    def test_durations_read_naturally(self) -> None:
        assert [format_duration(s) for s in (None, 4.4, 65, 7325)] == ["-", "4s", "1m 05s", "2h 02m"]

    def test_unset_timestamps_show_a_dash(self) -> None:
        assert format_time(jobs_pb2.Job().updated_at) == "-"

    def test_states_parse_from_short_or_full_names(self) -> None:
        assert parse_state("Running") == parse_state("JOB_STATE_RUNNING") == "JOB_STATE_RUNNING"
        assert state_name(jobs_pb2.JOB_STATE_CANCELLED) == "cancelled"
