"""The claim-code lockout counts per identity and client address: a stranger's wrong codes lock the stranger out, not
the holder; fifty from many addresses lock the identity as a backstop. An IPv6 address counts as its /64 (which one
subscriber owns whole), an IPv4-mapped one as its IPv4 address. Addresses are stored only as keyed hashes."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from registry.db import transaction
from registry.holder_access.sign_in import MAX_FAILURES, MAX_FAILURES_ANY_ADDRESS
from tests.checks import assert_problem
from tests.factories import issued_certificate, ready_issuer, resident_id
from tests.integration.rate_limit_support import from_address

WRONG = "AAAA-BBBB-CCCC"


async def _holder(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, str]:
    number = resident_id(birth="19910303")
    holder = {"name": "周九", "id_type": "resident_id", "id_number": number}
    certificate = await issued_certificate(client, await ready_issuer(app, client), holder=holder)
    return number, certificate["claim_code"]


async def _sign_in(app: FastAPI, address: str, id_number: str, claim_code: str) -> httpx.Response:
    body = {"id_type": "resident_id", "id_number": id_number, "claim_code": claim_code}
    async with from_address(app, address) as http:
        return await http.post("/v1/holder/sessions", json=body)


async def test_a_strangers_wrong_codes_do_not_lock_the_holder_out(app: FastAPI, client: httpx.AsyncClient) -> None:
    id_number, claim_code = await _holder(app, client)
    for _ in range(MAX_FAILURES):
        assert_problem(await _sign_in(app, "198.51.100.66", id_number, WRONG), 401, slug="wrong-claim-code")

    at_home = await _sign_in(app, "203.0.113.10", id_number, claim_code)
    assert at_home.status_code == 201, at_home.text


async def test_wrong_codes_from_one_address_lock_that_address_out_even_with_the_right_code(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    id_number, claim_code = await _holder(app, client)
    for _ in range(MAX_FAILURES):
        assert (await _sign_in(app, "198.51.100.66", id_number, WRONG)).status_code == 401

    locked = await _sign_in(app, "198.51.100.66", id_number, claim_code)
    assert_problem(locked, 429, slug="too-many-requests")
    assert 800 < int(locked.headers["Retry-After"]) <= 900
    assert "from your network" in locked.json()["detail"]


async def test_fifty_wrong_codes_from_many_addresses_lock_the_identity_as_a_backstop(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    id_number, claim_code = await _holder(app, client)
    per_address = MAX_FAILURES - 1  # never enough to lock any one address
    addresses = [f"198.51.100.{n}" for n in range(-(-MAX_FAILURES_ANY_ADDRESS // per_address))]
    failures = 0
    for address in addresses:
        for _ in range(per_address):
            if failures < MAX_FAILURES_ANY_ADDRESS:
                assert (await _sign_in(app, address, id_number, WRONG)).status_code == 401
                failures += 1

    locked = await _sign_in(app, "203.0.113.10", id_number, claim_code)
    assert_problem(locked, 429, slug="too-many-requests")
    assert "from many addresses" in locked.json()["detail"]


async def test_wrong_codes_from_every_address_of_one_ipv6_64_lock_that_64_out_not_the_holder(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Before, each of a /64's addresses had its own count: a guesser with one IPv6 subscription went on guessing until
    the backstop locked the identity, and with it the holder, out for 15 minutes."""
    id_number, claim_code = await _holder(app, client)
    answers = [
        await _sign_in(app, f"2001:db8:1:2::{n + 0x101:x}", id_number, WRONG) for n in range(MAX_FAILURES_ANY_ADDRESS)
    ]
    assert [a.status_code for a in answers[:MAX_FAILURES]] == [401] * MAX_FAILURES
    for refused in answers[MAX_FAILURES:]:
        assert_problem(refused, 429, slug="too-many-requests")
        assert "from your network" in refused.json()["detail"]
    assert (await _sign_in(app, "2001:db8:1:2:ab::1", id_number, claim_code)).status_code == 429  # the whole /64

    next_door = await _sign_in(app, "2001:db8:1:3::10", id_number, claim_code)  # the neighbouring /64: the holder
    assert next_door.status_code == 201, next_door.text


async def test_an_ipv4_mapped_address_counts_as_its_ipv4_address(app: FastAPI, client: httpx.AsyncClient) -> None:
    id_number, claim_code = await _holder(app, client)
    for _ in range(MAX_FAILURES):
        assert (await _sign_in(app, "198.51.100.66", id_number, WRONG)).status_code == 401

    assert_problem(await _sign_in(app, "::ffff:198.51.100.66", id_number, claim_code), 429, slug="too-many-requests")
    assert (await _sign_in(app, "::ffff:198.51.100.67", id_number, claim_code)).status_code == 201


async def test_a_holder_signing_in_clears_only_their_own_addresses_count(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    id_number, claim_code = await _holder(app, client)
    for _ in range(MAX_FAILURES - 1):
        assert (await _sign_in(app, "203.0.113.10", id_number, WRONG)).status_code == 401
    assert (await _sign_in(app, "203.0.113.10", id_number, claim_code)).status_code == 201
    for _ in range(MAX_FAILURES - 1):  # a fresh count: four more typos do not lock the holder out
        assert (await _sign_in(app, "203.0.113.10", id_number, WRONG)).status_code == 401
    assert (await _sign_in(app, "203.0.113.10", id_number, claim_code)).status_code == 201


async def test_the_throttle_keeps_keyed_hashes_of_addresses_never_the_addresses(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    id_number, _ = await _holder(app, client)
    for address in ("198.51.100.66", "2001:db8::66"):
        assert (await _sign_in(app, address, id_number, WRONG)).status_code == 401
    async with transaction(app.state.sessions) as session:
        stored = (await session.execute(text("SELECT address_index FROM holder_login_throttle"))).scalars().all()
    hashed = sorted(value for value in stored if value != "*")
    assert stored.count("*") == 1, stored  # the identity's count from everywhere
    assert len(hashed) == 2, stored  # and one per address
    assert all(re.fullmatch(r"[0-9a-f]{64}", value) for value in hashed), stored


def _full_width(code: str) -> str:
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in code)


async def test_the_right_code_typed_on_a_chinese_input_method_signs_in(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Before, the code in full-width characters, with full-width hyphens or em dashes, or with the letter O for a
    zero, was a wrong code: five such tries locked the holder out of their own certificate."""
    id_number, claim_code = await _holder(app, client)
    for typed in (
        _full_width(claim_code),
        claim_code.replace("-", "－"),
        claim_code.replace("-", "—"),
        claim_code.replace("0", "O").replace("1", "l").lower(),
        f" {claim_code.replace('-', ' ')} ",
    ):
        signed_in = await _sign_in(app, "203.0.113.10", id_number, typed)
        assert signed_in.status_code == 201, (typed, signed_in.text)


async def test_a_code_that_cannot_be_one_is_refused_naming_it_and_is_no_strike(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    id_number, claim_code = await _holder(app, client)
    for typed, words in (
        ("AAAA-BBBB-CCCU", "not U"),
        ("AAAA-BBBB-CC*C", "not *"),
        ("AAAA-BBBB-CCCC-D", "given 13"),
        ("AAAA----BBBB", "given 8"),
    ):
        for _ in range(MAX_FAILURES):
            refused = await _sign_in(app, "198.51.100.66", id_number, typed)
            assert_problem(refused, 422, field="claim_code", message=words)
    signed_in = await _sign_in(app, "198.51.100.66", id_number, claim_code)
    assert signed_in.status_code == 201, signed_in.text
