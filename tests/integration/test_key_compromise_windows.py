"""Marking a body's credential key compromised (``POST /v1/issuers/{code}/keys/{kid}/compromise``): which PDF-signing
keys are cut off with it (the ones that signed while it was the body's key, not the current one), and the compromise
date, which is never ahead of now and, once marked, only moves earlier."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from fastapi import FastAPI
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from tests.checks import assert_problem, leaves_no_trace
from tests.factories import bearer, issued_certificate
from tests.integration.lifecycle_support import CODE, World, key_named, published_keys, set_up, verified


async def _pdf(client: httpx.AsyncClient, world: World, number: str) -> bytes:
    response = await client.get(f"/v1/certificates/{number}.pdf", headers=bearer(world.issuer))
    assert response.status_code == 200, response.text
    return response.content


async def _checked_by_crl(client: httpx.AsyncClient, pdf: bytes) -> bool:
    """What a reader that checks revocation (the root's CRL, hard-fail) says of the PDF's signature."""
    _, _, der = pem.unarmor((await client.get("/.well-known/pdf-signing-root.pem")).content)
    root = asn1_x509.Certificate.load(der)
    crl = (await client.get("/.well-known/pdf-signing-root.crl")).content
    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    context = ValidationContext(trust_roots=[root], crls=[crl], revocation_mode="hard-fail")
    return bool((await async_validate_pdf_signature(signature, context)).bottom_line)


def _signer_of(pdf: bytes) -> x509.Certificate:
    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    return x509.load_der_x509_certificate(signature.signer_cert.dump())


async def _compromise(client: httpx.AsyncClient, world: World, kid: str, since: str, lang: str = "") -> httpx.Response:
    return await client.post(
        f"/v1/issuers/{CODE}/keys/{kid}/compromise{lang}", json={"compromised_from": since}, headers=bearer(world.admin)
    )


async def _compromise_records(client: httpx.AsyncClient, world: World) -> list[dict[str, Any]]:
    response = await client.get("/v1/audit", params={"action": "key.compromised"}, headers=bearer(world.admin))
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()["data"]
    return records


async def test_compromising_a_retired_key_revokes_its_own_document_key_not_the_current_one(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A body's old credential key K1 (retired by a rotation) turns out to be stolen. The document key D1 that signed
    its PDFs goes into the root's CRL, dated no earlier than D1 itself; the current document key D2, made after the
    rotation, is left alone. (It was the other way round: D2 revoked, D1 never.)"""
    world = await set_up(app, client)
    old = await issued_certificate(client, world.issuer)
    await asyncio.sleep(1.1)  # D1, made by the first PDF, starts a second after the compromise date below
    old_pdf = await _pdf(client, world, old["number"])  # signed by D1
    rotated = await client.post(f"/v1/issuers/{CODE}/keys/rotate", headers=bearer(world.admin))
    assert rotated.status_code == 201, rotated.text
    new = await issued_certificate(client, world.issuer)
    new_pdf = await _pdf(client, world, new["number"])  # signed by D2
    assert await _checked_by_crl(client, old_pdf)
    assert await _checked_by_crl(client, new_pdf)

    marked = await _compromise(client, world, old["kid"], old["issued_at"])
    assert marked.status_code == 200, marked.text
    assert (await verified(client, old))["result"] == "unknown"
    assert (await verified(client, new))["result"] == "valid"
    assert (await _checked_by_crl(client, new_pdf), await _checked_by_crl(client, old_pdf)) == (True, False)

    crl = x509.load_der_x509_crl((await client.get("/.well-known/pdf-signing-root.crl")).content)
    (revoked,) = list(crl)
    d1 = _signer_of(old_pdf)
    assert revoked.serial_number == d1.serial_number
    # D1's certificate starts five minutes before the key (slack for slow clocks): revoked from the key's start.
    assert revoked.revocation_date_utc >= d1.not_valid_before_utc + timedelta(minutes=5)
    (record,) = await _compromise_records(client, world)
    assert record["details"]["document_keys"] != [], record


async def test_a_later_date_on_a_compromised_key_is_refused_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Once a stolen key's certificates answer 'unknown', a second mark with a later date must not make them answer
    'valid' again (it did: the date was overwritten): 409 naming ``compromised_from``, in the asker's language,
    and nothing written."""
    world = await set_up(app, client)
    first = await issued_certificate(client, world.issuer)
    await asyncio.sleep(1.1)
    second = await issued_certificate(client, world.issuer)
    marked = await _compromise(client, world, first["kid"], first["issued_at"])
    assert marked.status_code == 200, marked.text

    later = await leaves_no_trace(app, _compromise(client, world, first["kid"], second["issued_at"], "?lang=zh"))
    assert_problem(later, 409, field="compromised_from", message="晚于已标记的日期")
    assert "只能提前" in later.json()["detail"]
    assert (await verified(client, first))["result"] == "unknown"
    assert (await verified(client, second))["result"] == "unknown"
    listed = key_named(await published_keys(client), first["kid"])
    assert datetime.fromisoformat(listed["compromised_from"]) == datetime.fromisoformat(first["issued_at"])


async def test_the_same_or_an_earlier_date_is_taken_again_widening_the_compromise(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Marking again with the same date answers 200 and changes nothing; an earlier one (the theft was found to go
    further back) moves the date back, so more certificates answer 'unknown'. Each mark is audited."""
    world = await set_up(app, client)
    first = await issued_certificate(client, world.issuer)
    await asyncio.sleep(1.1)
    second = await issued_certificate(client, world.issuer)
    assert (await _compromise(client, world, first["kid"], second["issued_at"])).status_code == 200
    assert (await verified(client, first))["result"] == "valid"

    again = await _compromise(client, world, first["kid"], second["issued_at"])
    assert again.status_code == 200, again.text
    assert datetime.fromisoformat(again.json()["compromised_from"]) == datetime.fromisoformat(second["issued_at"])
    assert (await verified(client, first))["result"] == "valid"

    earlier = await _compromise(client, world, first["kid"], first["issued_at"])
    assert earlier.status_code == 200, earlier.text
    assert datetime.fromisoformat(earlier.json()["compromised_from"]) == datetime.fromisoformat(first["issued_at"])
    assert (await verified(client, first))["result"] == "unknown"
    records = await _compromise_records(client, world)
    assert [datetime.fromisoformat(r["details"]["compromised_from"]) for r in records] == [
        datetime.fromisoformat(moment) for moment in (second["issued_at"], second["issued_at"], first["issued_at"])
    ]
    # The widening says what it widened.
    assert datetime.fromisoformat(records[-1]["details"]["previously_from"]) == datetime.fromisoformat(
        second["issued_at"]
    )


async def test_a_compromise_dated_in_the_future_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    """A compromise is something that has happened: a date ahead of now is a typing error (a year off), and taking it
    published the key as 'compromised' while its certificates all still answered 'valid'. A few seconds ahead (the
    asker's clock running fast) is still taken."""
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    future = (datetime.now(UTC) + timedelta(days=365)).isoformat()

    refused = await leaves_no_trace(app, _compromise(client, world, certificate["kid"], future, "?lang=zh"))
    assert_problem(refused, 422, field="compromised_from", message="不得晚于当前时间")
    assert key_named(await published_keys(client), certificate["kid"])["status"] == "active"

    fast_clock = (datetime.now(UTC) + timedelta(seconds=10)).isoformat()
    taken = await _compromise(client, world, certificate["kid"], fast_clock)
    assert taken.status_code == 200, taken.text
