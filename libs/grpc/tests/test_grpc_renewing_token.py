"""RenewingToken: a process's own token, minted again before it expires (a fake clock, no sleeps)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from modelyard_grpc import FileToken, Principal, RenewingToken, Role, TokenIssuer, mint_token, tokens
from modelyard_grpc.auth import SERVICES
from modelyard_grpc.testing import TEST_ISSUER, verifier_for


class MintLog:
    """When (on the fake clock) and with which ttl each token was minted."""

    def __init__(self) -> None:
        self.minted_at, self.ttls = list[float](), list[float]()


@pytest.fixture
def now() -> list[float]:
    return [1000.0]


@pytest.fixture
def mints(monkeypatch: pytest.MonkeyPatch, now: list[float]) -> MintLog:
    log = MintLog()

    def recorded(
        issuer: TokenIssuer,
        subject: str,
        org_id: str | None,
        roles: list[str],
        ttl_s: float,
        audience: Sequence[str] = SERVICES,
    ) -> str:
        log.minted_at.append(now[0])
        log.ttls.append(ttl_s)
        return mint_token(issuer, subject, org_id, roles, ttl_s, audience)

    monkeypatch.setattr(tokens, "mint_token", recorded)
    return log


def test_the_token_names_the_subject_organization_and_roles_it_was_made_for() -> None:
    token = RenewingToken(TEST_ISSUER, "job-svc", [Role.AUDITOR], org_id="acme")
    assert verifier_for().verify(token()) == Principal("job-svc", "acme", frozenset({Role.AUDITOR}))


def test_the_same_token_is_returned_until_its_renewal_point(mints: MintLog, now: list[float]) -> None:
    token = RenewingToken(TEST_ISSUER, "job-svc", ["auditor"], ttl_s=100, clock=lambda: now[0])
    first = token()
    now[0] += 79.9
    assert token() == first
    assert mints.minted_at == [1000.0]


def test_a_new_token_is_minted_before_the_old_one_expires(mints: MintLog, now: list[float]) -> None:
    token = RenewingToken(TEST_ISSUER, "job-svc", ["auditor"], ttl_s=100, clock=lambda: now[0])
    for _ in range(30):  # 30 x 10 s: three token lives
        token()
        now[0] += 10
    assert mints.minted_at == [1000.0, 1080.0, 1160.0, 1240.0]
    assert mints.ttls == [100, 100, 100, 100]


def test_the_renewal_point_is_a_chosen_share_of_the_tokens_life(mints: MintLog, now: list[float]) -> None:
    token = RenewingToken(TEST_ISSUER, "t-1", ["trainer"], ttl_s=100, renew_after=0.5, clock=lambda: now[0])
    token()
    now[0] += 50
    token()
    assert mints.minted_at == [1000.0, 1050.0]


@pytest.mark.parametrize(("ttl_s", "renew_after"), [(0, 0.8), (-1, 0.8), (100, 0), (100, 1)])
def test_a_token_that_could_not_renew_in_time_is_refused(ttl_s: float, renew_after: float) -> None:
    with pytest.raises(ValueError, match=r"ttl_s|renew_after"):
        RenewingToken(TEST_ISSUER, "job-svc", ["auditor"], ttl_s=ttl_s, renew_after=renew_after)


def test_a_file_token_is_read_again_when_the_issuer_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "job-svc.token"
    path.write_text("first\n")
    token = FileToken(path)
    assert token() == "first"

    path.write_text("second-and-longer\n")
    assert token() == "second-and-longer"

    path.write_text("")
    with pytest.raises(RuntimeError, match="is empty"):
        token()
    path.unlink()
    with pytest.raises(RuntimeError, match="cannot read"):
        token()
