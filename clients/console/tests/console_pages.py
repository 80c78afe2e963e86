"""Steps the console's unit tests take in the browser they fake: read a form's CSRF token, sign in."""

from __future__ import annotations

import re

from console_fakes import token_for
from starlette.testclient import TestClient

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: str) -> str:
    """The CSRF token a page's forms carry."""
    found = CSRF_FIELD.search(page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(browser: TestClient, token: str | None = None) -> str:
    """Sign in through the form; the session's CSRF token."""
    form = browser.get("/signin")
    response = browser.post("/signin", data={"token": token or token_for(), "csrf_token": csrf_of(form.text)})
    assert response.status_code == 303, response.text
    return csrf_of(browser.get("/queue").text)
