"""Pages of deploy-svc's list calls, followed until a limit or the last page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

MAX_PAGE_SIZE = 100  # deploy-svc's limit per page


async def collect_pages(
    call: Callable[[Any], Awaitable[Any]], request: Any, items: str, limit: int | None
) -> Any:
    """Call `call(request)` page after page until `limit` items (None: all) are in the response's
    repeated field `items`, or the last page; the response keeps the next page's token."""
    result: Any = None
    while True:
        collected = 0 if result is None else len(getattr(result, items))
        wanted = MAX_PAGE_SIZE if limit is None else limit - collected
        request.page_size = min(wanted, MAX_PAGE_SIZE)
        page = await call(request)
        if result is None:
            result = type(page)()
        getattr(result, items).extend(list(getattr(page, items))[: request.page_size])
        result.next_page_token = page.next_page_token
        if not page.next_page_token or (limit is not None and len(getattr(result, items)) >= limit):
            return result
        request.page_token = page.next_page_token
