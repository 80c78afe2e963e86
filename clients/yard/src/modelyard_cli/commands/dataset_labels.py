"""`yard datasets label`: label samples from a CSV sheet, or one sample with a class or boxes.

The caller (the token's subject) is the annotator; a new label replaces their own earlier one.
Labels go in LabelSamples calls of `--batch` labels each; a refused call leaves the batches before it
recorded.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Annotated

import typer

from modelyard.v1 import datasets_pb2
from modelyard_cli.commands.options import DatasetId, JsonFlag
from modelyard_cli.commands.sample_pages import all_samples
from modelyard_cli.connection import DatasetSvc
from modelyard_cli.invocation import call_dataset_svc, output_for
from modelyard_cli.label_input import LabelInputError, LabelSheet, parse_boxes, read_label_sheet, resolve
from modelyard_cli.output import fail, message_dict
from modelyard_cli.render.samples import states_text


def label(
    ctx: typer.Context,
    dataset_id: DatasetId,
    labels: Annotated[
        Path | None, typer.Option(help="A CSV with a `filename` (or `sample_id`) and a `class` column.")
    ] = None,
    sample: Annotated[
        str | None, typer.Option(help="One sample's id (with --class or --boxes-json).")
    ] = None,
    class_name: Annotated[str | None, typer.Option("--class", help="The sample's class.")] = None,
    boxes_json: Annotated[
        str | None,
        typer.Option(
            help='Detection boxes: [{"class_name":"cat","x":0.1,"y":0.2,"width":0.3,"height":0.4}].'
        ),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Labels per LabelSamples call.")] = 500,
    as_json: JsonFlag = False,
) -> None:
    """Label samples (LabelSamples) as the token's subject and print how many, per resulting state."""
    try:
        source = _label_source(labels, sample, class_name, boxes_json)
    except LabelInputError as error:
        fail(f"error: {error}")
    sent: list[datasets_pb2.Sample] = []
    try:
        call_dataset_svc(
            ctx,
            lambda svc: send_labels(svc, dataset_id, source, batch, sent),
            advice=lambda _: [f"{len(sent)} label(s) of earlier batches were recorded"] if sent else [],
        )
    except LabelInputError as error:
        fail(f"error: {error}")
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(
            {"dataset_id": dataset_id, "labeled": len(sent), "samples": [message_dict(s) for s in sent]}
        )
    else:
        out.show(f"labeled {len(sent)} sample(s) of {dataset_id}; states now: {states_text(sent)}")


LabelSource = LabelSheet | datasets_pb2.SampleLabel


def _label_source(
    labels: Path | None, sample: str | None, class_name: str | None, boxes_json: str | None
) -> LabelSource:
    if labels is not None:
        if sample or class_name or boxes_json:
            raise typer.BadParameter("--labels takes no --sample, --class or --boxes-json")
        return read_label_sheet(labels)
    if not sample or (class_name is None) == (boxes_json is None):
        raise typer.BadParameter("give --labels FILE.csv, or --sample ID with either --class or --boxes-json")
    if boxes_json is not None:
        annotation = datasets_pb2.Annotation(boxes=parse_boxes(boxes_json))
    else:
        annotation = datasets_pb2.Annotation(class_name=class_name)
    return datasets_pb2.SampleLabel(sample_id=sample, annotation=annotation)


async def send_labels(
    svc: DatasetSvc, dataset_id: str, source: LabelSource, batch: int, sent: list[datasets_pb2.Sample]
) -> None:
    """Send the labels in batches, adding the labeled samples (as the server returns them) to `sent`."""
    labels = await _sample_labels(svc, dataset_id, source)
    for start in range(0, len(labels), batch):
        request = datasets_pb2.LabelSamplesRequest(
            dataset_id=dataset_id, labels=labels[start : start + batch]
        )
        response: datasets_pb2.LabelSamplesResponse = await svc.datasets.LabelSamples(request)
        sent.extend(response.samples)


async def _sample_labels(
    svc: DatasetSvc, dataset_id: str, source: LabelSource
) -> list[datasets_pb2.SampleLabel]:
    if isinstance(source, datasets_pb2.SampleLabel):
        return [source]
    ids_by_filename = await sample_ids_by_filename(svc, dataset_id) if source.key_column == "filename" else {}
    return [
        datasets_pb2.SampleLabel(sample_id=sample_id, annotation=datasets_pb2.Annotation(class_name=name))
        for sample_id, name in resolve(source, ids_by_filename)
    ]


async def sample_ids_by_filename(svc: DatasetSvc, dataset_id: str) -> dict[str, list[str]]:
    """Every sample id of the dataset under its filename (all pages of ListSamples)."""
    ids: dict[str, list[str]] = defaultdict(list)
    async for sample in all_samples(svc, datasets_pb2.ListSamplesRequest(dataset_id=dataset_id)):
        ids[sample.filename].append(sample.sample_id)
    return ids
