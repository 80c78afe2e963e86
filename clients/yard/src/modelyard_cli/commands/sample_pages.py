"""Reading every sample a ListSamples request matches, page after page."""

from __future__ import annotations

from collections.abc import AsyncIterator

from modelyard.v1 import datasets_pb2
from modelyard_cli.connection import DatasetSvc

LIST_PAGE_SIZE = 1000  # ListSamples' largest page


async def all_samples(
    svc: DatasetSvc, request: datasets_pb2.ListSamplesRequest
) -> AsyncIterator[datasets_pb2.Sample]:
    """Every sample `request` matches, in the server's order, following next_page_token to the end."""
    request.page_size = LIST_PAGE_SIZE
    while True:
        page: datasets_pb2.ListSamplesResponse = await svc.datasets.ListSamples(request)
        for sample in page.samples:
            yield sample
        if not page.next_page_token:
            return
        request.page_token = page.next_page_token
