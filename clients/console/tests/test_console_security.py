"""Every response carries the security headers; the session cookie cannot be read by scripts or sent
cross-site; the templates hold no inline script or style (the CSP would block them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from console_pages import sign_in
from starlette.testclient import TestClient

from modelyard_console.security_headers import CONTENT_SECURITY_POLICY
from modelyard_console.sessions import COOKIE_NAME
from modelyard_console.web import TEMPLATES_DIR


@pytest.mark.parametrize(
    "path", ["/signin", "/", "/queue", "/static/console.js", "/static/vendor/htmx-2.0.11.min.js", "/nowhere"]
)
def test_every_response_forbids_other_origins_and_framing(browser: TestClient, path: str) -> None:
    response = browser.get(path)
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_signed_in_pages_carry_the_headers_too(browser: TestClient) -> None:
    sign_in(browser)
    for path in ("/", "/queue", "/history"):
        response = browser.get(path)
        assert response.status_code == 200, path
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["Cache-Control"] == "no-store"


def test_the_session_cookie_is_http_only_and_same_site_strict(browser: TestClient) -> None:
    cookie = browser.get("/signin").headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie


def test_the_token_never_reaches_the_browser(browser: TestClient) -> None:
    from console_fakes import token_for

    token = token_for()
    sign_in(browser, token)
    assert token not in browser.cookies.get(COOKIE_NAME, "")
    assert token not in browser.get("/").text


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=|\son[a-z]+=", re.IGNORECASE)


@pytest.mark.parametrize("template", sorted(p.name for p in Path(TEMPLATES_DIR).glob("*.html")))
def test_templates_have_no_inline_script_style_or_handler(template: str) -> None:
    text = (Path(TEMPLATES_DIR) / template).read_text()
    assert not INLINE_SCRIPT.search(text)
    assert not INLINE_STYLE.search(text)
    assert "http://" not in text
    assert "https://" not in text
