"""The per-number limit counts every question the routes read as that number: a JSON body in UTF-16 or UTF-32 or
behind a byte order mark (the route parses it), a form's number spread out with spaces past any length (the route
folds them away). The per-address limit counts every address of an IPv6 /64, which one subscriber owns whole, as
one."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.config import Settings
from registry.holder_access.sign_in import MAX_FAILURES_ANY_ADDRESS
from tests.checks import assert_problem
from tests.factories import issued_certificate, ready_issuer, resident_id
from tests.integration.rate_limit_support import from_address, limited_app

GUESSES = 3
ENCODINGS = {
    "utf-16": lambda text: text.encode("utf-16"),
    "utf-16-be": lambda text: text.encode("utf-16-be"),
    "utf-32": lambda text: text.encode("utf-32"),
    "utf-8 with a byte order mark": lambda text: b"\xef\xbb\xbf" + text.encode(),
}


async def _number(app: FastAPI, client: httpx.AsyncClient) -> str:
    certificate: dict[str, Any] = await issued_certificate(client, await ready_issuer(app, client))
    return str(certificate["number"])


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_name_guesses_sent_in_another_unicode_encoding_count_against_the_number(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, encoding: str
) -> None:
    number = await _number(app, client)
    headers = {"Content-Type": "application/json"}
    async with limited_app(settings, rate_limit_verify_number=f"{GUESSES}/minute") as limited:
        for guess in range(GUESSES + 1):
            body = ENCODINGS[encoding](json.dumps({"number": number, "holder_name": f"李{guess}"}))
            async with from_address(limited, f"10.1.0.{guess}") as http:
                answer = await http.post("/v1/verify", content=body, headers=headers)
            if guess < GUESSES:
                assert answer.status_code == 404, answer.text  # the route reads the body: a wrong name, not a 422
        assert_problem(answer, 429, slug="too-many-requests")
        async with from_address(limited, "10.1.0.99") as http:
            plain = await http.post("/v1/verify", json={"number": number, "holder_name": "张三"})
        assert_problem(plain, 429, slug="too-many-requests")


@pytest.mark.parametrize("padding", [80, 300])
async def test_a_number_spread_out_with_spaces_on_the_form_counts_as_the_number(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, padding: int
) -> None:
    number = await _number(app, client)
    spread = " ".join(number) + " " * padding  # past the 64 and 256 characters the counters used to stop reading at
    async with limited_app(settings, rate_limit_verify_number=f"{GUESSES}/minute") as limited:
        for guess in range(GUESSES + 1):
            async with from_address(limited, f"10.2.0.{guess}") as http:
                answer = await http.post("/v", data={"number": spread, "holder_name": f"李{guess}"})
            if guess < GUESSES:
                assert answer.status_code == 404, answer.text  # the route reads the spread number as the number
        assert_problem(answer, 429, slug="too-many-requests")
        async with from_address(limited, "10.2.0.99") as http:
            plain = await http.post("/v", data={"number": number, "holder_name": "张三"})
        assert_problem(plain, 429, slug="too-many-requests")


async def test_scanning_from_a_new_address_of_one_ipv6_64_every_time_meets_the_default_limit(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    """The finding as it was shown: 125 scans, each from another address of 2001:db8:1:2::/64, none refused."""
    token = (await issued_certificate(client, await ready_issuer(app, client)))["qr_token"]
    async with limited_app(settings) as limited:  # the default: 120 a minute
        statuses = []
        for n in range(125):
            async with from_address(limited, f"2001:db8:1:2::{n + 0x101:x}") as scanner:
                statuses.append((await scanner.get(f"/v1/verify/{token}")).status_code)
        assert statuses == [200] * 120 + [429] * 5


async def test_guessing_claim_codes_from_one_ipv6_64_cannot_lock_the_holder_out(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The finding as it was shown: wrong claim codes from 2001:db8:1:2::101, ::102, … never met the per-address
    lockout, and the fiftieth locked the identity, so the holder, signing in from elsewhere, met 429 for 15 minutes."""
    holder = {"name": "周九", "id_type": "resident_id", "id_number": resident_id(birth="19910303")}
    certificate = await issued_certificate(client, await ready_issuer(app, client), holder=holder)
    wrong = {"id_type": "resident_id", "id_number": holder["id_number"], "claim_code": "AAAA-BBBB-CCCC"}
    for n in range(MAX_FAILURES_ANY_ADDRESS + 5):
        async with from_address(app, f"2001:db8:1:2::{n + 0x101:x}") as guesser:
            assert (await guesser.post("/v1/holder/sessions", json=wrong)).status_code in (401, 429)
    async with from_address(app, "203.0.113.10") as at_home:
        signed_in = await at_home.post("/v1/holder/sessions", json={**wrong, "claim_code": certificate["claim_code"]})
    assert signed_in.status_code == 201, signed_in.text
