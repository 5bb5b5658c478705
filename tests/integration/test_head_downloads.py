"""A HEAD of a download (the e-certificate PDF, the signed credential, the CSV export) says whether the caller may
have it, with the GET's type and attachment name, without making it or recording a download. Before, it rendered and
signed the PDF, signed the credential or streamed the whole export, and the audit log said "downloaded"."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from tests.factories import admin_token, bearer, create_issuer, issued_certificate, issuer_token, ready_issuer
from tests.integration.holder_support import signed_in_holder
from tests.integration.test_holder_pages import holder_at_home

PURPOSE = "spot check"


async def actions(client: httpx.AsyncClient, admin: str, action: str) -> list[dict[str, Any]]:
    answer = await client.get("/v1/audit", params={"action": action}, headers=bearer(admin))
    assert answer.status_code == 200, answer.text
    records: list[dict[str, Any]] = answer.json()["data"]
    return records


def assert_headers_only(head: httpx.Response, got: httpx.Response) -> None:
    assert head.status_code == got.status_code == 200, (head.text, got.text[:200])
    assert head.content == b""
    for name in ("content-type", "content-disposition", "cache-control"):
        assert head.headers.get(name) == got.headers.get(name), name
    assert head.headers.get("content-length") in (None, got.headers.get("content-length"))


async def test_head_of_a_pdf_or_credential_makes_and_records_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder = await signed_in_holder(app, client)
    admin = await admin_token(app, client)
    number = holder.certificate["number"]
    for path, action, who in [
        (f"/v1/certificates/{number}.pdf", "certificate.pdf_downloaded", bearer(holder.issuer)),
        (f"/v1/holder/certificates/{number}.pdf", "certificate.pdf_downloaded", holder.headers),
        (f"/v1/certificates/{number}/credential", "certificate.credential_downloaded", holder.headers),
    ]:
        before = len(await actions(client, admin, action))
        head = await client.head(path, headers=who)
        assert len(await actions(client, admin, action)) == before, path  # a HEAD is not a download
        got = await client.get(path, headers=who)
        assert_headers_only(head, got)
        assert len(await actions(client, admin, action)) == before + 1, path


async def test_head_of_a_download_still_asks_who_is_asking(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder = await signed_in_holder(app, client)
    admin = await admin_token(app, client)
    other_body = await issuer_token(app, client, (await create_issuer(client, admin, code="BJ-OTHER-BODY"))["code"])
    number = holder.certificate["number"]
    assert (await client.head(f"/v1/certificates/{number}.pdf", headers=bearer(other_body))).status_code == 404
    assert (await client.head(f"/v1/certificates/{number}.pdf")).status_code == 401
    assert (await client.head("/v1/certificates/BJT20260000000X.pdf", headers=bearer(holder.issuer))).status_code in (
        404,
        422,
    )


async def test_head_of_the_holder_pages_downloads_makes_and_records_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder, _ = await holder_at_home(app, client)
    admin = await admin_token(app, client)
    number = holder.certificate["number"]
    for path, action in [
        (f"/holder/certificates/{number}.pdf", "certificate.pdf_downloaded"),
        (f"/holder/certificates/{number}/credential.jwt", "certificate.credential_downloaded"),
    ]:
        head = await client.head(path)
        assert await actions(client, admin, action) == [], path
        assert_headers_only(head, await client.get(path))


async def test_head_of_the_export_streams_nothing_and_records_no_export(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    for _ in range(3):
        await issued_certificate(client, issuer)
    admin = await admin_token(app, client)
    params = {"purpose": PURPOSE}
    head = await client.head("/v1/certificates/export.csv", params=params, headers=bearer(admin))
    assert await actions(client, admin, "certificate.exported") == []
    got = await client.get("/v1/certificates/export.csv", params=params, headers=bearer(admin))
    assert_headers_only(head, got)
    assert got.text.count("\n") == 4  # the header and three rows
    assert len(await actions(client, admin, "certificate.exported")) == 1
    refused = await client.head("/v1/certificates/export.csv", params={"status": "nonsense"}, headers=bearer(issuer))
    assert refused.status_code == 422


async def test_head_of_a_download_the_get_refuses_is_refused_alike(app: FastAPI, client: httpx.AsyncClient) -> None:
    """A certificate signed by a key marked compromised cannot be vouched for: its GET is 409, and so is its HEAD."""
    holder = await signed_in_holder(app, client)
    admin = await admin_token(app, client)
    certificate = holder.certificate
    marked = await client.post(
        f"/v1/issuers/{certificate['issuer_code']}/keys/{certificate['kid']}/compromise",
        json={"compromised_from": "2026-01-01T00:00:00Z"},
        headers=bearer(admin),
    )
    assert marked.status_code == 200, marked.text
    number = certificate["number"]
    for path, who in [
        (f"/v1/certificates/{number}.pdf", bearer(holder.issuer)),
        (f"/v1/holder/certificates/{number}.pdf", holder.headers),
        (f"/v1/certificates/{number}/credential", holder.headers),
    ]:
        got, head = await client.get(path, headers=who), await client.head(path, headers=who)
        assert got.status_code == 409, (path, got.text)
        assert head.status_code == got.status_code, path
        assert head.content == b""
