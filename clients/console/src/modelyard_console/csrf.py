"""Cross-site request forgery: every POST must echo its session's CSRF token and come from our origin.

The session cookie is SameSite=Strict, so another site's form already arrives without it; the token (a
hidden form field, or the `X-CSRF-Token` header htmx sends) and the Origin check hold even where a
browser or proxy drops SameSite.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from modelyard_console.sessions import Session

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
# The console's largest form is the job submission; a pasted token is a few kilobytes.
MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 32
MAX_FIELD_CHARS = 16_384


class CsrfRefused(Exception):
    """A POST without its session's CSRF token, or from another origin."""


class FormRefused(Exception):
    """A form too large (413) or too many-fielded to read."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


async def checked_form(request: Request, session: Session) -> FormData:
    """The POST's form, once its origin and CSRF token are the session's; CsrfRefused otherwise."""
    origin = request.headers.get("origin")
    if origin is not None and origin != own_origin(request):
        raise CsrfRefused(f"a form from {origin} may not act on this console")
    form = await read_form(request)
    given = request.headers.get(HEADER) or form.get(FIELD)
    if not isinstance(given, str) or not hmac.compare_digest(given, session.csrf_token):
        raise CsrfRefused("the form's security token is missing or stale: reload the page and try again")
    return form


def own_origin(request: Request) -> str:
    """The console's public origin when configured (behind a proxy), else `scheme://host[:port]` of the
    console as this request reached it."""
    public: str | None = request.app.state.console.settings.public_origin
    return public or f"{request.url.scheme}://{request.url.netloc}"


async def read_form(request: Request) -> FormData:
    """The POST's form, read within MAX_FORM_BYTES, MAX_FIELDS and MAX_FIELD_CHARS; FormRefused beyond.

    Every form of the console is URL-encoded; a multipart one is read by Starlette with the same limits
    and no files.
    """
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        raise FormRefused(413, f"a form may hold at most {MAX_FORM_BYTES // 1024} KiB")
    if request.headers.get("content-type", "").startswith("multipart/"):
        return await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_CHARS)
    body = bytearray()
    async for chunk in request.stream():  # a chunked body declares no length: count it
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormRefused(413, f"a form may hold at most {MAX_FORM_BYTES // 1024} KiB")
    try:
        fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError as error:
        raise FormRefused(400, f"a form may have at most {MAX_FIELDS} fields") from error
    if any(len(value) > MAX_FIELD_CHARS for _, value in fields):
        raise FormRefused(413, f"a form field may hold at most {MAX_FIELD_CHARS:,} characters")
    items: list[tuple[str, str | UploadFile]] = [(name, value) for name, value in fields]
    return FormData(items)
