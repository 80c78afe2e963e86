"""`yard jobs watch`: follow a job's WatchJob stream until it completes, fails or is cancelled.

Exit code 0 when the job completed, 1 when it failed or was cancelled, 2 when the call failed or
the stream ended before the job did.
"""

from __future__ import annotations

from types import TracebackType
from typing import NoReturn, Protocol

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from modelyard.v1 import jobs_pb2
from modelyard_cli.commands.options import JobId, JsonFlag
from modelyard_cli.connection import JobSvc
from modelyard_cli.invocation import call_job_svc, output_for
from modelyard_cli.output import Output, fail, message_dict
from modelyard_cli.render.values import FINISHED_STATES
from modelyard_cli.render.watch import epoch_line, final_lines, progress_view, state_line


class WatchView(Protocol):
    """Where a watch's updates go, as they come."""

    def show(self, update: jobs_pb2.JobUpdate) -> None: ...


def watch(ctx: typer.Context, job_id: JobId, as_json: JsonFlag = False) -> None:
    """Follow a job live until it finishes (exit code 0 when completed, 1 when failed or cancelled)."""
    watch_until_finished(ctx, job_id, output_for(ctx, as_json))


def watch_until_finished(ctx: typer.Context, job_id: str, out: Output) -> NoReturn:
    """Show the job's updates until it finishes, then its final metrics, and exit with its outcome."""
    if out.as_json:
        job = call_job_svc(ctx, lambda svc: follow(svc, job_id, JsonLinesWatch(out)))
    else:
        with RichWatch(out.console) as view:
            job = call_job_svc(ctx, lambda svc: follow(svc, job_id, view))
            if job is not None and job.state in FINISHED_STATES:
                view.finish(job)
    if job is None or job.state not in FINISHED_STATES:
        fail(f"error: the watch of {job_id} ended before the job finished; `yard jobs watch {job_id}` again")
    raise typer.Exit(0 if job.state == jobs_pb2.JOB_STATE_COMPLETED else 1)


async def follow(svc: JobSvc, job_id: str, view: WatchView) -> jobs_pb2.Job | None:
    """Hand each update of the job's WatchJob stream to `view`; the job as last seen (None: no update)."""
    call = svc.jobs.WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id))
    last: jobs_pb2.Job | None = None
    try:
        async for update in call:
            view.show(update)
            last = update.job
            if last.state in FINISHED_STATES:
                break
    finally:
        call.cancel()
    return last


class JsonLinesWatch:
    """Each update as one JSON object on its own line."""

    def __init__(self, out: Output) -> None:
        self._out = out

    def show(self, update: jobs_pb2.JobUpdate) -> None:
        """Print the update as a JSON line."""
        self._out.json_line(message_dict(update))


class RichWatch:
    """A progress bar over the job's overall progress, with a printed line per epoch and state."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[speed]}"),
            TextColumn("ETA {task.fields[eta]}"),
            console=console,
        )
        self._task = self._progress.add_task("waiting for the job", total=100, speed="-", eta="-")
        self._latest: jobs_pb2.JobProgress | None = None

    def __enter__(self) -> RichWatch:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def show(self, update: jobs_pb2.JobUpdate) -> None:
        """Print epoch and state lines above the bar, then move the bar."""
        change = update.WhichOneof("change")
        if change == "progress":
            self._latest = update.progress
        elif change == "epoch_completed":
            self._latest = None
            self._console.print(
                epoch_line(update.epoch_completed, update.job.epochs_total), markup=False, soft_wrap=True
            )
        elif change == "state_changed":
            self._latest = None
            self._console.print(state_line(update.job), markup=False, soft_wrap=True)
        view = progress_view(update.job, self._latest)
        self._progress.update(
            self._task, completed=view.percent, description=view.description, speed=view.speed, eta=view.eta
        )

    def finish(self, job: jobs_pb2.Job) -> None:
        """Print the outcome, the last epoch's metrics and the artifact or failure reason."""
        self._progress.stop()
        for line in final_lines(job):
            self._console.print(line, markup=False, soft_wrap=True)
