"""`yard datasets create | list | show | publish | readiness`: datasets, their versions and readiness.

`readiness` exits with code 0 when the dataset (or version) is ready to train on and with
NOT_READY_EXIT_CODE (3) when it is not, so scripts can gate on it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from modelyard.v1 import datasets_pb2
from modelyard_cli.commands.options import DatasetId, JsonFlag, RequestId
from modelyard_cli.connection import DatasetSvc
from modelyard_cli.invocation import call_dataset_svc, output_for
from modelyard_cli.output import fail, message_dict
from modelyard_cli.render.dataset_values import (
    EnvironmentName,
    SampleStateName,
    TaskName,
    environment_value,
    sample_state_value,
    task_value,
)
from modelyard_cli.render.datasets import (
    dataset_details,
    dataset_line,
    datasets_table,
    readiness_view,
    version_details,
)
from modelyard_cli.render.samples import samples_table
from modelyard_cli.render.values import MISSING, cells, format_time, present

NOT_READY_EXIT_CODE = 3


def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The dataset's name.", show_default=False)],
    module: Annotated[str, typer.Option(help="The AI module (a slug) the data is for.", show_default=False)],
    environment: Annotated[
        EnvironmentName, typer.Option("--env", help="The environment.", show_default=False)
    ],
    task: Annotated[TaskName, typer.Option(help="What labels the samples get.", show_default=False)],
    classes: Annotated[
        str | None, typer.Option(help="The class names, comma-separated, in the model's output order.")
    ] = None,
    classes_file: Annotated[
        Path | None, typer.Option(help="The class names, one per line (instead of --classes).")
    ] = None,
    org: Annotated[str | None, typer.Option(help="The organization (default: your token's).")] = None,
    request_id: RequestId = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a dataset (CreateDataset) with its label schema, and print it."""
    schema = datasets_pb2.LabelSchema(task=task_value(task), classes=class_names(classes, classes_file))
    request = datasets_pb2.CreateDatasetRequest(
        org_id=org or "", name=name, ai_module=module, environment=environment_value(environment),
        label_schema=schema, request_id=request_id or "",
    )  # fmt: skip
    dataset: datasets_pb2.Dataset = call_dataset_svc(ctx, lambda svc: svc.datasets.CreateDataset(request))
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(dataset))
    else:
        out.show(dataset_line(dataset))


def class_names(classes: str | None, classes_file: Path | None) -> list[str]:
    """The classes of `--classes a,b` or of `--classes-file` (one per line, blank lines skipped)."""
    if classes is not None and classes_file is not None:
        raise typer.BadParameter("give the classes with --classes or with --classes-file, not both")
    if classes_file is not None:
        try:
            text = classes_file.read_text(encoding="utf-8")
        except OSError as error:
            fail(f"error: cannot read {classes_file}: {error.strerror or error}")
        return [line.strip() for line in text.splitlines() if line.strip()]
    return [name.strip() for name in (classes or "").split(",") if name.strip()]


def list_datasets(
    ctx: typer.Context,
    module: Annotated[str | None, typer.Option(help="Only datasets of this AI module.")] = None,
    environment: Annotated[
        EnvironmentName | None, typer.Option("--env", help="Only this environment.")
    ] = None,
    org: Annotated[str | None, typer.Option(help="Only this organization's datasets.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List datasets (ListDatasets) with their schema, size and latest version."""
    request = datasets_pb2.ListDatasetsRequest(
        org_id=org or "",
        ai_module=module or "",
        environment=environment_value(environment) if environment else None,
    )
    response: datasets_pb2.ListDatasetsResponse = call_dataset_svc(
        ctx, lambda svc: svc.datasets.ListDatasets(request)
    )
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(response))
    else:
        out.show(datasets_table(response.datasets))


def show(
    ctx: typer.Context,
    dataset_id: DatasetId,
    samples: Annotated[
        SampleStateName | None, typer.Option(help="Also list samples in this state.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many samples.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Show a dataset: details, sample counts per state, the latest version and, with --samples, samples."""
    sample_request = None
    if samples is not None:
        sample_request = datasets_pb2.ListSamplesRequest(
            dataset_id=dataset_id, states=[sample_state_value(samples)], page_size=limit
        )
    dataset, version, listed = call_dataset_svc(
        ctx, lambda svc: fetch_overview(svc, dataset_id, sample_request)
    )
    out = output_for(ctx, as_json)
    if out.as_json:
        document: dict[str, Any] = {"dataset": message_dict(dataset)}
        document["latest_version"] = message_dict(version) if version is not None else None
        document["samples"] = [message_dict(s) for s in listed]
        out.document(document)
        return
    out.show(dataset_details(dataset))
    if version is not None:
        out.show(version_details(version))
    if samples is not None:
        out.show(samples_table(listed, title=f"{samples.value} samples"))
        provenance = provenance_table(listed)
        if provenance is not None:
            out.show(provenance)


def provenance_table(samples: list[datasets_pb2.Sample]) -> Table | None:
    """Where the listed samples came from (camera, capture time, metadata, file); None when none says."""
    given = [s for s in samples if s.source_camera_id or s.HasField("captured_at") or s.metadata]
    if not given:
        return None
    table = Table("id", "camera", "captured", "metadata", "file", title="provenance")
    for sample in given:
        metadata = (
            json.dumps(dict(sample.metadata), sort_keys=True, ensure_ascii=False) if sample.metadata else ""
        )
        table.add_row(
            *cells(
                sample.sample_id,
                sample.source_camera_id or MISSING,
                format_time(present(sample, "captured_at")),
                metadata if sample.metadata else MISSING,
                sample.file_url or MISSING,
            )
        )
    return table


async def fetch_overview(
    svc: DatasetSvc, dataset_id: str, sample_request: datasets_pb2.ListSamplesRequest | None
) -> tuple[datasets_pb2.Dataset, datasets_pb2.DatasetVersion | None, list[datasets_pb2.Sample]]:
    """The dataset, its latest published version (None before the first) and the asked-for samples."""
    dataset: datasets_pb2.Dataset = await svc.datasets.GetDataset(
        datasets_pb2.DatasetRef(dataset_id=dataset_id)
    )
    ref = datasets_pb2.VersionRef(dataset_id=dataset_id, version=dataset.latest_version)
    version_call = svc.datasets.GetVersion(ref) if dataset.latest_version else _nothing()
    samples_call = svc.datasets.ListSamples(sample_request) if sample_request else _nothing()
    version, page = await asyncio.gather(version_call, samples_call)
    return dataset, version, list(page.samples) if page is not None else []


async def _nothing() -> None:
    return None


def publish(
    ctx: typer.Context,
    dataset_id: DatasetId,
    seed: Annotated[int, typer.Option(help="Seed of the train/val/test split.")] = 0,
    train: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of samples for training.")] = 0.8,
    val: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share for validation; test gets the rest.")
    ] = 0.1,
    family: Annotated[
        str | None,
        typer.Option(help="The model family the readiness report judges for (image_classifier …)."),
    ] = None,
    request_id: RequestId = None,
    as_json: JsonFlag = False,
) -> None:
    """Publish an immutable version of the verified samples (PublishVersion) and print its readiness."""
    if train + val > 1.0:
        raise typer.BadParameter(f"--train {train} and --val {val} add up to more than 1")
    request = datasets_pb2.PublishVersionRequest(
        dataset_id=dataset_id, seed=seed, train_fraction=train, val_fraction=val,
        request_id=request_id or "", family=family or "",
    )  # fmt: skip
    version: datasets_pb2.DatasetVersion = call_dataset_svc(
        ctx, lambda svc: svc.datasets.PublishVersion(request)
    )
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(version, with_defaults=True))
    else:
        out.show(version_details(version), readiness_view(version.readiness))


def readiness(
    ctx: typer.Context,
    dataset_id: DatasetId,
    version: Annotated[
        int, typer.Option(min=0, help="A published version; 0 = the working set as it would publish now.")
    ] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Print the readiness report (GetReadiness); exit code 0 when ready, 3 when not."""
    request = datasets_pb2.ReadinessRequest(dataset_id=dataset_id, version=version)
    report: datasets_pb2.ReadinessReport = call_dataset_svc(
        ctx, lambda svc: svc.datasets.GetReadiness(request)
    )
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(report, with_defaults=True))
    else:
        out.show(readiness_view(report))
    if not report.ready:
        raise typer.Exit(NOT_READY_EXIT_CODE)
