"""Review: an identity number typed in groups ("1101-0519-7903-1700-2X") and shifted into the catalogue or level
column — whose shapes allow hyphens and underscores — is refused without echoing it either."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.checks import assert_problem
from tests.factories import bearer, certificate_body, ready_issuer, resident_id

HOLDER = {"name": "冯十", "id_type": "resident_id"}


async def test_an_identity_number_in_groups_sent_as_the_catalogue_code_or_level_is_not_echoed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    token = await ready_issuer(app, client)
    number = resident_id(birth="19790317")
    holder = {**HOLDER, "id_number": number}
    groups = [number[at : at + 4] for at in range(0, len(number), 4)]  # 1101 0519 7903 17xx xx
    for column, grouped in (("catalogue_code", "-".join(groups)), ("level", "_".join(groups).lower())):
        body = {**certificate_body(holder=holder), column: grouped}
        refused = await client.post("/v1/certificates", json=body, headers=bearer(token))
        problem = assert_problem(refused, 422, field=column, secret=number)
        said = problem["errors"][0]["message"]
        assert grouped not in said, said
        assert number[6:14] not in said.replace(grouped[4], ""), said  # nor its birth date, in groups or not
