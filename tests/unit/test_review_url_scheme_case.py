"""A URL's scheme is case-insensitive (RFC 3986): ``HTTPS://…`` given to ``registry verify-credential`` is a URL, not
a file name (it was read as a file and the command said the file could not be read; ``--offline`` let it through)."""

from __future__ import annotations

from registry.credentials.sources import is_url, offline_problem


def test_a_scheme_in_capitals_is_a_url() -> None:
    assert is_url("HTTPS://registry.test/.well-known/jwks.json")
    assert is_url("Http://registry.test/v/ABC")
    assert not is_url("HTTPS:registry.test")
    assert not is_url("./https/credential.jwt")


def test_offline_refuses_a_url_whose_scheme_is_in_capitals() -> None:
    refused = offline_problem(
        credential="credential.jwt", jwks="HTTPS://registry.test/.well-known/jwks.json", status_lists=[]
    )
    assert refused is not None
    assert "HTTPS://registry.test/.well-known/jwks.json" in refused
