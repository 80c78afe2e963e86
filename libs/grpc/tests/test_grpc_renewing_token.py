"""RenewingToken: a process's own token, minted again before it expires (a fake clock, no sleeps)."""

from __future__ import annotations

import pytest
from grpc_support import SECRET

from modelyard_grpc import Principal, RenewingToken, Role, mint_token, tokens, verify_token


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

    def recorded(secret: str, subject: str, org_id: str | None, roles: list[str], ttl_s: float) -> str:
        log.minted_at.append(now[0])
        log.ttls.append(ttl_s)
        return mint_token(secret, subject, org_id, roles, ttl_s)

    monkeypatch.setattr(tokens, "mint_token", recorded)
    return log


def test_the_token_names_the_subject_organization_and_roles_it_was_made_for() -> None:
    token = RenewingToken(SECRET, "job-svc", [Role.AUDITOR], org_id="acme")
    assert verify_token(SECRET, token()) == Principal("job-svc", "acme", frozenset({Role.AUDITOR}))


def test_the_same_token_is_returned_until_its_renewal_point(mints: MintLog, now: list[float]) -> None:
    token = RenewingToken(SECRET, "job-svc", ["auditor"], ttl_s=100, clock=lambda: now[0])
    first = token()
    now[0] += 79.9
    assert token() == first
    assert mints.minted_at == [1000.0]


def test_a_new_token_is_minted_before_the_old_one_expires(mints: MintLog, now: list[float]) -> None:
    token = RenewingToken(SECRET, "job-svc", ["auditor"], ttl_s=100, clock=lambda: now[0])
    for _ in range(30):  # 30 x 10 s: three token lives
        token()
        now[0] += 10
    assert mints.minted_at == [1000.0, 1080.0, 1160.0, 1240.0]
    assert mints.ttls == [100, 100, 100, 100]


def test_the_renewal_point_is_a_chosen_share_of_the_tokens_life(mints: MintLog, now: list[float]) -> None:
    token = RenewingToken(SECRET, "t-1", ["trainer"], ttl_s=100, renew_after=0.5, clock=lambda: now[0])
    token()
    now[0] += 50
    token()
    assert mints.minted_at == [1000.0, 1050.0]


@pytest.mark.parametrize(("ttl_s", "renew_after"), [(0, 0.8), (-1, 0.8), (100, 0), (100, 1)])
def test_a_token_that_could_not_renew_in_time_is_refused(ttl_s: float, renew_after: float) -> None:
    with pytest.raises(ValueError, match=r"ttl_s|renew_after"):
        RenewingToken(SECRET, "job-svc", ["auditor"], ttl_s=ttl_s, renew_after=renew_after)
