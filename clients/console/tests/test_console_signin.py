"""Sign-in takes a pasted token, keeps it server-side and shows whose it is; text that is no token, or
an expired one, is refused with the reason."""

from __future__ import annotations

import time

import pytest
from console_fakes import FakeJobService, token_for
from console_pages import csrf_of, sign_in
from starlette.testclient import TestClient

from modelyard_console.sessions import COOKIE_NAME
from modelyard_console.token_claims import MalformedToken, user_of
from modelyard_grpc import mint_token


def test_pages_send_a_browser_without_a_session_to_sign_in(browser: TestClient) -> None:
    response = browser.get("/queue")
    assert (response.status_code, response.headers["location"]) == (303, "/signin")


@pytest.mark.parametrize("pasted", ["", "not a token", "a.b.c", "x" * 9000])
def test_sign_in_refuses_text_that_is_no_token(browser: TestClient, pasted: str) -> None:
    form = browser.get("/signin")
    response = browser.post("/signin", data={"token": pasted, "csrf_token": csrf_of(form.text)})
    assert response.status_code == 400
    assert "Not signed in" in response.text
    assert browser.get("/").status_code == 303  # still signed out


def test_sign_in_refuses_an_expired_token() -> None:
    from console_fakes import ISSUER

    token = mint_token(ISSUER, "ada", "acme", ["super_admin"], 60)
    with pytest.raises(MalformedToken, match="expired"):
        user_of(token, now=time.time() + 120)


def test_the_claims_name_subject_org_and_roles() -> None:
    user = user_of("Bearer " + token_for("grace", "initech", ("org_admin", "auditor")))
    assert (user.subject, user.org_id, user.roles) == ("grace", "initech", ("org_admin", "auditor"))


def test_signed_in_pages_show_who_and_calls_carry_the_token(
    browser: TestClient, job_svc: FakeJobService
) -> None:
    token = token_for("grace", "initech", ("org_admin",))
    sign_in(browser, token)
    page = browser.get("/").text
    assert "Signed in as <strong>grace</strong>" in page
    assert "organization <strong>initech</strong>" in page
    assert "roles <strong>org_admin</strong>" in page
    assert job_svc.tokens
    assert set(job_svc.tokens) == {token}


def test_signing_in_gives_the_browser_a_new_session_id(browser: TestClient) -> None:
    browser.get("/signin")
    before = browser.cookies.get(COOKIE_NAME)
    sign_in(browser)
    assert browser.cookies.get(COOKIE_NAME) not in (None, before)


def test_sign_out_forgets_the_session(browser: TestClient) -> None:
    csrf = sign_in(browser)
    assert browser.post("/signout", data={"csrf_token": csrf}).status_code == 303
    assert browser.get("/").headers["location"] == "/signin"
