"""HEAD where GET is served, and revalidation by ETag by RFC 9110's weak comparison. Before, every HEAD was 405
(FastAPI routes answer only the methods they declare), a status list's weakened ETag (as a compressing proxy sends
it back) was a full 200, and a QR code was cached for a year as "immutable" though its URL follows the base URL."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from fastapi import FastAPI

from registry.verification import verifier
from tests.factories import bearer
from tests.integration.holder_support import signed_in_holder

SAME_HEADERS = ("content-type", "content-length", "etag", "cache-control")


async def test_head_answers_as_get_without_a_body_and_is_a_look_as_the_get_is(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A verification's ETag covers its checked_at: the GET and the HEAD are checked at one moment, to compare them.
    checked = datetime.now(UTC).replace(microsecond=0)
    monkeypatch.setattr(verifier, "utcnow", lambda: checked)
    holder = await signed_in_holder(app, client)
    number, token = holder.certificate["number"], holder.certificate["qr_token"]
    credential = await client.get(f"/v1/certificates/{number}/credential", headers=holder.headers)
    status_list = jwt.decode(credential.text.strip(), options={"verify_signature": False})["credentialStatus"]
    paths = [
        f"/v1/verify/{token}",
        f"/v/{token}",
        "/.well-known/jwks.json",
        urlsplit(status_list["statusListCredential"]).path,
        "/v1/transparency/checkpoint",
        "/healthz",
        "/v/" + "A" * 24,  # an unknown token: the 404 page's headers
    ]
    for path in paths:
        got = await client.get(path)
        head = await client.head(path)
        assert head.status_code == got.status_code, (path, head.status_code, got.status_code)
        assert head.content == b"", path
        for name in SAME_HEADERS:
            assert head.headers.get(name) == got.headers.get(name), (path, name)
    qr = f"/v1/certificates/{number}/qr.png"
    head = await client.head(qr, headers=holder.headers)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == "image/png"
    await app.state.visits.flush()
    looks = (await client.get("/v1/holder/verifications", headers=holder.headers)).json()
    # Two GETs and two HEADs of the certificate: a HEAD learns what the GET would (its status), so it is a look.
    assert len(looks) == 4, looks


async def test_a_status_list_and_a_qr_code_revalidate_by_weak_comparison(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    number = holder.certificate["number"]
    credential = await client.get(f"/v1/certificates/{number}/credential", headers=holder.headers)
    url = jwt.decode(credential.text.strip(), options={"verify_signature": False})["credentialStatus"][
        "statusListCredential"
    ]
    first = await client.get(url)
    tag = first.headers["etag"]
    for sent in (tag, f"W/{tag}", f'"other", W/{tag}', "*"):
        again = await client.get(url, headers={"If-None-Match": sent})
        assert again.status_code == 304, sent
        assert again.headers["etag"] == tag
    assert (await client.get(url, headers={"If-None-Match": '"other"'})).status_code == 200

    qr = await client.get(f"/v1/certificates/{number}/qr.svg", headers=bearer(holder.issuer))
    assert qr.status_code == 200
    assert "immutable" not in qr.headers["cache-control"]
    assert qr.headers["cache-control"] == "private, max-age=86400"
    for sent in (qr.headers["etag"], "W/" + qr.headers["etag"]):
        revalidated = await client.get(
            f"/v1/certificates/{number}/qr.svg", headers={**bearer(holder.issuer), "If-None-Match": sent}
        )
        assert revalidated.status_code == 304, sent
        assert revalidated.content == b""
