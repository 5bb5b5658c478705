"""Secrets and identity numbers never reach the logs, even with SQL logging switched on."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from tests.factories import (
    admin_token,
    bearer,
    certificate_body,
    create_client,
    create_issuer,
    resident_id,
    token_for,
    with_wrong_check_char,
)


async def test_logs_carry_no_identity_number_or_secret(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        admin = await admin_token(app, client)
        await create_issuer(client, admin)
        client_id, secret = await create_client(app, role=Role.issuer, issuer_code="BJ-AI-COMMITTEE")
        issuer = await token_for(client, client_id, secret)
        number = resident_id(birth="19770707")
        holder = {"name": "钱七", "id_type": "resident_id", "id_number": number}
        issued = await client.post("/v1/certificates", json=certificate_body(holder=holder), headers=bearer(issuer))
        assert issued.status_code == 201
        wrong = with_wrong_check_char(number)
        rejected = await client.post(
            "/v1/certificates", json=certificate_body(holder={**holder, "id_number": wrong}), headers=bearer(issuer)
        )
        assert rejected.status_code == 422
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    assert "INSERT INTO api_clients" in caplog.text  # SQL logging really was on (certificates go by COPY)
    for secret_text in (number, wrong, secret, issued.json()["claim_code"], "19770707"):
        assert secret_text not in caplog.text
