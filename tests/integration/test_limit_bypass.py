"""The per-number limit counts every question the routes read as that number: a JSON body in UTF-16 or UTF-32 or
behind a byte order mark (the route parses it), a form's number spread out with spaces past any length (the route
folds them away)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.config import Settings
from tests.checks import assert_problem
from tests.factories import issued_certificate, ready_issuer
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
