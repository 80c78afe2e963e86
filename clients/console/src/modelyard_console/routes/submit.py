"""Submit a training job (CreateJob), or first ask what it would take (EstimateJob), from a form.

The form's fields are `yard jobs submit`'s options; hyperparameters are one `key=value` per line, read
as yard reads `--param`. A refusal (a bad field, the plan's monthly limit) is shown above the form with
the fields it names, and the form keeps what was typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.v1 import jobs_pb2
from modelyard_cli.hyperparameters import BadHyperparameter, hyperparameters
from modelyard_console.csrf import checked_form
from modelyard_console.gateway import Refusal
from modelyard_console.values import format_duration
from modelyard_console.web import console_of, go, note_done, render, signed_in

FAMILIES = ("image_classifier", "tabular_classifier", "tabular_regressor")
DEFAULT_PRIORITY = 50
_MAX_FIELD_CHARS = 4000


@dataclass
class JobForm:
    """What the form holds (as typed), to show again after a refusal or an estimate."""

    name: str = ""
    ai_module: str = ""
    family: str = FAMILIES[0]
    dataset_uri: str = ""
    params: str = ""
    priority: str = str(DEFAULT_PRIORITY)
    description: str = ""

    @classmethod
    def of(cls, form: FormData) -> JobForm:
        """The fields of a posted form (missing ones empty)."""
        values = {name: str(form.get(name, "") or "")[:_MAX_FIELD_CHARS] for name in cls.__dataclass_fields__}
        return cls(**values)

    def request(self) -> jobs_pb2.CreateJobRequest:
        """CreateJob's request; BadHyperparameter or ValueError when a field cannot be read at all."""
        params: struct_pb2.Struct = hyperparameters(
            [line for line in self.params.splitlines() if line.strip()]
        )
        priority = int(self.priority) if self.priority.strip() else None
        return jobs_pb2.CreateJobRequest(
            name=self.name, ai_module=self.ai_module, family=self.family, dataset_uri=self.dataset_uri,
            hyperparameters=params, priority=priority, description=self.description,
        )  # fmt: skip


async def submit_form(request: Request) -> Response:
    """The empty form."""
    session, _ = signed_in(request)
    return render(request, "submit.html", session, title="Submit a job", page="queue", form=JobForm(),
                  families=FAMILIES)  # fmt: skip


async def submit(request: Request) -> Response:
    """Estimate (button `intent=estimate`) or create the job; on success, the job's page."""
    session, token = signed_in(request)
    fields = await checked_form(request, session)
    form = JobForm.of(fields)
    estimate_wanted = fields.get("intent") == "estimate"
    context: dict[str, Any] = {"title": "Submit a job", "page": "queue", "form": form, "families": FAMILIES}
    try:
        job_request = form.request()
    except (BadHyperparameter, ValueError) as error:
        return render(
            request, "submit.html", session, 400, problem=str(error).replace("--param ", ""), **context
        )
    try:
        async with console_of(request).gateway.jobs(token) as svc:
            if estimate_wanted:
                estimate = await svc.queries.EstimateJob(job_request)
                return render(request, "submit.html", session, estimate=estimate_rows(estimate),
                              explanation=estimate.explanation, **context)  # fmt: skip
            job = await svc.jobs.CreateJob(job_request)
    except Refusal as refusal:
        return render(request, "submit.html", session, 400, refusal=refusal, **context)
    note_done(session, f"{job.name} ({job.job_id}) submitted")
    return go(f"/jobs/{job.job_id}")


def estimate_rows(estimate: jobs_pb2.JobEstimate) -> list[tuple[str, int, str, str, str]]:
    """Per kind of device: device, past runs, samples/s, duration, cost (when a price is configured)."""
    return [
        (
            d.device,
            d.runs,
            f"{d.samples_per_s:,.1f}/s",
            format_duration(d.duration_s),
            f"{d.cost:,.2f}" if d.HasField("cost") else "-",
        )
        for d in estimate.devices
    ]


routes = [
    Route("/jobs/new", submit_form, methods=["GET"]),
    Route("/jobs/new", submit, methods=["POST"]),
]
