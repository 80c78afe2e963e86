"""Download URLs signed for one audience: minting, checking, and every way a URL is refused."""

from __future__ import annotations

import string
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from artifact_support import EXPIRES, NOW, OTHER_KEY

from modelyard_artifacts.signed_urls import DownloadGrant, UrlRefused, UrlSigner, UrlVerifier

SHA = "ab" * 32
AUDIENCE = "edge/plant-7"


def _minted(signer: UrlSigner, version_id: str = "mv-1") -> tuple[str, dict[str, str]]:
    url = signer.mint(version_id, SHA, AUDIENCE, EXPIRES, "https://registry.example/", now=NOW)
    parts = urlsplit(url)
    return parts.path, dict(parse_qsl(parts.query))


class TestMinting:
    def test_a_url_names_the_version_in_its_path_and_the_grant_in_its_query(
        self, url_signer: UrlSigner
    ) -> None:
        path, query = _minted(url_signer, "mv/1 x")
        assert path == "/v1/artifacts/mv%2F1%20x"
        assert query["sha256"] == SHA
        assert query["aud"] == AUDIENCE
        assert query["exp"] == str(int(EXPIRES.timestamp()))
        assert len(query["sig"]) == 86

    def test_a_url_checks_into_its_grant(self, url_signer: UrlSigner, url_verifier: UrlVerifier) -> None:
        _, query = _minted(url_signer)
        assert url_verifier.check("mv-1", query, NOW) == DownloadGrant("mv-1", SHA, AUDIENCE, EXPIRES)

    @pytest.mark.parametrize(
        "lifetime", [timedelta(hours=24, seconds=1), timedelta(0), timedelta(seconds=-1)]
    )
    def test_minting_refuses_an_expiry_not_within_24_hours(
        self, url_signer: UrlSigner, lifetime: timedelta
    ) -> None:
        with pytest.raises(ValueError, match="must expire within 24 hours"):
            url_signer.mint("mv-1", SHA, AUDIENCE, NOW + lifetime, "https://r", now=NOW)

    @pytest.mark.parametrize(
        ("version_id", "sha256", "audience"), [("", SHA, "a"), ("v", "AB" * 32, "a"), ("v", SHA, "")]
    )
    def test_minting_refuses_malformed_values(
        self, url_signer: UrlSigner, version_id: str, sha256: str, audience: str
    ) -> None:
        with pytest.raises(ValueError, match="needs a version id"):
            url_signer.mint(version_id, sha256, audience, EXPIRES, "https://r", now=NOW)


class TestRefusals:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("sha256", "cd" * 32),
            ("aud", "edge/plant-8"),
            ("exp", str(int(EXPIRES.timestamp()) + 1)),
            ("exp", str(int(EXPIRES.timestamp()) - 1)),
        ],
    )
    def test_an_altered_parameter_is_refused(
        self, url_signer: UrlSigner, url_verifier: UrlVerifier, name: str, value: str
    ) -> None:
        _, query = _minted(url_signer)
        with pytest.raises(UrlRefused, match="signature does not match"):
            url_verifier.check("mv-1", query | {name: value}, NOW)

    def test_another_version_in_the_path_is_refused(
        self, url_signer: UrlSigner, url_verifier: UrlVerifier
    ) -> None:
        _, query = _minted(url_signer)
        with pytest.raises(UrlRefused, match="signature does not match"):
            url_verifier.check("mv-2", query, NOW)

    @pytest.mark.parametrize("position", [0, 40, 85])
    def test_an_altered_signature_is_refused(
        self, url_signer: UrlSigner, url_verifier: UrlVerifier, position: int
    ) -> None:
        _, query = _minted(url_signer)
        sig = query["sig"]
        for replacement in "AB":  # one of them differs from the character there
            if sig[position] != replacement:
                altered = sig[:position] + replacement + sig[position + 1 :]
        with pytest.raises(UrlRefused, match="signature does not match"):
            url_verifier.check("mv-1", query | {"sig": altered}, NOW)

    def test_another_spelling_of_the_same_signature_is_refused(
        self, url_signer: UrlSigner, url_verifier: UrlVerifier
    ) -> None:
        _, query = _minted(url_signer)
        alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
        last = alphabet.index(query["sig"][-1])
        same_bits = alphabet[(last & 0b110000) | ((last + 1) & 0b001111)]  # the low 4 bits carry nothing
        with pytest.raises(UrlRefused, match="signature does not match"):
            url_verifier.check("mv-1", query | {"sig": query["sig"][:-1] + same_bits}, NOW)

    @pytest.mark.parametrize("sig", ["", "not base64!", "QUJD", "x" * 87])
    def test_a_malformed_signature_is_refused(
        self, url_signer: UrlSigner, url_verifier: UrlVerifier, sig: str
    ) -> None:
        _, query = _minted(url_signer)
        with pytest.raises(UrlRefused, match=r"lacks sig|signature does not match"):
            url_verifier.check("mv-1", query | {"sig": sig}, NOW)

    @pytest.mark.parametrize("name", ["sha256", "aud", "exp", "kid", "sig"])
    def test_a_missing_parameter_is_named(
        self, url_signer: UrlSigner, url_verifier: UrlVerifier, name: str
    ) -> None:
        _, query = _minted(url_signer)
        del query[name]
        with pytest.raises(UrlRefused, match=f"the URL lacks {name}; ask the registry"):
            url_verifier.check("mv-1", query, NOW)

    @pytest.mark.parametrize(
        ("name", "value", "says"),
        [
            ("sha256", "AB" * 32, "64 lowercase hex"),
            ("exp", "soon", "Unix time"),
            ("exp", "1" * 13, "Unix time"),
        ],
    )
    def test_a_malformed_parameter_is_named(
        self, url_signer: UrlSigner, url_verifier: UrlVerifier, name: str, value: str, says: str
    ) -> None:
        _, query = _minted(url_signer)
        with pytest.raises(UrlRefused, match=says):
            url_verifier.check("mv-1", query | {name: value}, NOW)

    def test_a_url_is_refused_from_its_expiry_on(
        self, url_signer: UrlSigner, url_verifier: UrlVerifier
    ) -> None:
        _, query = _minted(url_signer)
        url_verifier.check("mv-1", query, EXPIRES - timedelta(seconds=1))
        with pytest.raises(UrlRefused, match=r"expired at 2026-12-03T11:00:00\.000000Z; ask for a new one"):
            url_verifier.check("mv-1", query, EXPIRES)

    def test_a_url_signed_by_an_unpinned_key_is_refused(self, url_verifier: UrlVerifier) -> None:
        _, query = _minted(UrlSigner(OTHER_KEY))
        with pytest.raises(
            UrlRefused, match=f"signed by key '{OTHER_KEY.key_id}', which this registry does not pin"
        ):
            url_verifier.check("mv-1", query, NOW)

    def test_a_url_living_past_the_cap_is_refused_even_when_signed(
        self, url_signer: UrlSigner, url_verifier: UrlVerifier
    ) -> None:
        _, query = _minted(url_signer)  # checked a day before its minter's clock says it was minted
        with pytest.raises(UrlRefused, match="lives longer than the 24 hours a URL may"):
            url_verifier.check("mv-1", query, NOW - timedelta(hours=24))
