"""Datasets: dataset-svc's datasets with their labeling and review progress; one dataset's published
versions and whether its working set is ready to publish, and why not. Read-only in this version:
uploads, labels and reviews go through `yard datasets …`."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.v1 import datasets_pb2
from modelyard_console.dataset_view import checks_view, dataset_view, version_view
from modelyard_console.web import console_of, render, signed_in

VERSIONS_SHOWN = 10  # the latest ones


async def datasets_page(request: Request) -> Response:
    """Every dataset the caller may see."""
    session, token = signed_in(request)
    async with console_of(request).gateway.datasets(token) as svc:
        found = await svc.datasets.ListDatasets(datasets_pb2.ListDatasetsRequest())
    datasets = [dataset_view(d) for d in found.datasets]
    return render(request, "datasets.html", session, title="Datasets", page="datasets", datasets=datasets)


async def dataset_page(request: Request) -> Response:
    """One dataset: counts, readiness of its working set (each check and what to do), its versions."""
    session, token = signed_in(request)
    dataset_id = request.path_params["dataset_id"]
    async with console_of(request).gateway.datasets(token) as svc:
        dataset, readiness = await asyncio.gather(
            svc.datasets.GetDataset(datasets_pb2.DatasetRef(dataset_id=dataset_id)),
            svc.datasets.GetReadiness(datasets_pb2.ReadinessRequest(dataset_id=dataset_id)),
        )
        numbers = range(dataset.latest_version, max(0, dataset.latest_version - VERSIONS_SHOWN), -1)
        versions = await asyncio.gather(
            *(
                svc.datasets.GetVersion(datasets_pb2.VersionRef(dataset_id=dataset_id, version=n))
                for n in numbers
            )
        )
    return render(
        request, "dataset.html", session, title=dataset.name, page="datasets", dataset=dataset_view(dataset),
        ready=readiness.ready, checks=checks_view(readiness), versions=[version_view(v) for v in versions],
    )  # fmt: skip


routes = [
    Route("/datasets", datasets_page, methods=["GET"]),
    Route("/datasets/{dataset_id}", dataset_page, methods=["GET"]),
]
