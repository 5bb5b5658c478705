"""`registry keys check` and `registry keys repair`: a database whose keys were marked compromised before the rule of
5e781f7 (an old credential key's compromise put the body's sound document key of the day in the PDF root's CRL and
left the stolen key's own document key out) is found, named and brought to the rule, once, audited; what the rule
itself marked (a credential key's cut-offs, a document key marked on its own) is found right and left alone."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
from cryptography import x509
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlmodel import col

from registry.audit import service as audit
from registry.audit.service import Actor
from registry.config import Settings
from registry.context import RegistryContext
from registry.db import transaction, utcnow
from registry.keys import service as keys
from registry.keys.models import KeyStatus, KeyUse, SigningKey
from tests.factories import bearer, issued_certificate
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.lifecycle_support import CODE, World, set_up, verified
from tests.integration.test_key_compromise_windows import _checked_by_crl, _compromise, _pdf, _signer_of

REPAIRED = "key.cut_off_repaired"


def _env(settings: Settings, locale: str = "C") -> dict[str, str]:
    return {**registry_env(settings.database_url), "LC_ALL": locale}


async def _mark_as_before_the_rule(app: FastAPI, kid: str, since: datetime) -> None:
    """What marking a key compromised did before 5e781f7: the key marked, and with it the body's document key of the
    day (whichever credential key it served), from the same date; audited naming no document key."""
    context: RegistryContext = app.state.context
    async with transaction(app.state.sessions) as session:
        key = await keys.get_by_kid(session, kid)
        assert key is not None
        key.status, key.compromised_from = KeyStatus.compromised, since
        key.retired_at = key.retired_at or utcnow()
        keys.reseal(context.box, key)
        for document_key in await keys.retire_active(
            session, context.box, use=KeyUse.document, issuer_id=key.issuer_id
        ):
            document_key.status, document_key.compromised_from = KeyStatus.compromised, since
            keys.reseal(context.box, document_key)
        details = {"issuer": CODE, "compromised_from": since.isoformat(), "replacement": None}
        await audit.append(
            session,
            actor=Actor(id="admin"),
            action="key.compromised",
            object_type="signing_key",
            object_id=kid,
            purpose="key management",
            details=details,
        )


async def _document_kids(app: FastAPI) -> list[str]:
    async with transaction(app.state.sessions) as session:
        query = select(col(SigningKey.kid)).where(col(SigningKey.use) == KeyUse.document).order_by(col(SigningKey.id))
        return list((await session.execute(query)).scalars())


async def _repair_records(app: FastAPI) -> list[tuple[str, str]]:
    async with transaction(app.state.sessions) as session:
        rows = await session.execute(
            text("SELECT object_id, actor FROM audit_log WHERE action = :a ORDER BY id"), {"a": REPAIRED}
        )
        return [(str(row[0]), str(row[1])) for row in rows]


async def _crl_serials(client: httpx.AsyncClient) -> dict[int, datetime]:
    crl = x509.load_der_x509_crl((await client.get("/.well-known/pdf-signing-root.crl")).content)
    return {entry.serial_number: entry.revocation_date_utc for entry in crl}


async def _rotated_body(app: FastAPI, client: httpx.AsyncClient) -> tuple[World, dict[str, str], bytes, bytes]:
    """A body whose first credential key K1 signed a certificate and document key D1 its PDF; then a rotation, and
    K2 and D2 did the same for a second certificate."""
    world = await set_up(app, client)
    old = await issued_certificate(client, world.issuer)
    await asyncio.sleep(1.1)  # D1 starts a second after the compromise date used below
    old_pdf = await _pdf(client, world, old["number"])
    rotated = await client.post(f"/v1/issuers/{CODE}/keys/rotate", headers=bearer(world.admin))
    assert rotated.status_code == 201, rotated.text
    new = await issued_certificate(client, world.issuer)
    new_pdf = await _pdf(client, world, new["number"])
    facts = {"old_issued_at": old["issued_at"], "old_kid": old["kid"], "new_qr": new["qr_token"]}
    return world, facts, old_pdf, new_pdf


async def test_check_finds_the_old_rules_crl_and_repair_brings_it_to_the_rule_once(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    _world, facts, old_pdf, new_pdf = await _rotated_body(app, client)
    d1, d2 = await _document_kids(app)
    await _mark_as_before_the_rule(app, facts["old_kid"], datetime.fromisoformat(facts["old_issued_at"]))
    # The old rule's harm, as a reader that checks revocation sees it: the sound PDF refused, the stolen key's taken.
    assert (await _checked_by_crl(client, new_pdf), await _checked_by_crl(client, old_pdf)) == (False, True)

    code, out, err = await run_registry("keys", "check", env=_env(settings))
    assert code == 1, (out, err)
    assert f"document key {d1} is not in the PDF root's CRL, but the compromise of {facts['old_kid']} cuts it" in out
    assert f"document key {d2} is in the PDF root's CRL from" in out
    assert "but no compromise cuts it off" in out
    assert "2 document keys checked: 2 not as the compromised keys cut them off, 0 keys whose seal fails" in out
    assert await _repair_records(app) == []  # the check wrote nothing

    code, out, err = await run_registry("keys", "repair", "--yes", env=_env(settings))
    assert code == 0, (out, err)
    assert "2 document keys repaired" in out, out
    assert sorted(await _repair_records(app)) == sorted([(d1, "cli"), (d2, "cli")])
    assert (await _checked_by_crl(client, new_pdf), await _checked_by_crl(client, old_pdf)) == (True, False)
    listed = await _crl_serials(client)
    signer = _signer_of(old_pdf)
    assert list(listed) == [signer.serial_number]
    assert listed[signer.serial_number] >= signer.not_valid_before_utc + timedelta(minutes=5)  # D1's own start

    code, out, err = await run_registry("keys", "check", env=_env(settings, "zh_CN.UTF-8"))
    assert code == 0, (out, err)
    assert "已检查 2 个文档密钥" in out, out
    code, out, err = await run_registry("keys", "repair", "--yes", env=_env(settings))
    assert code == 0, (out, err)
    assert "nothing written" in out, out
    assert len(await _repair_records(app)) == 2
    assert (await verified(client, {"qr_token": facts["new_qr"]}))["result"] == "valid"


async def test_what_the_rule_marked_checks_out_and_repair_leaves_it(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    """K1 (retired) marked through the API cuts D1 off; D2, the current document key, marked on its own, stays cut
    off too: neither is a disagreement, and a repair writes nothing."""
    world, facts, old_pdf, new_pdf = await _rotated_body(app, client)
    _d1, d2 = await _document_kids(app)
    marked = await _compromise(client, world, facts["old_kid"], facts["old_issued_at"])
    assert marked.status_code == 200, marked.text
    alone = await _compromise(client, world, d2, utcnow().isoformat())
    assert alone.status_code == 200, alone.text
    listed = await _crl_serials(client)
    assert set(listed) == {_signer_of(old_pdf).serial_number, _signer_of(new_pdf).serial_number}

    code, out, err = await run_registry("keys", "check", env=_env(settings))
    assert code == 0, (out, err)
    assert "2 document keys checked: 0 not as the compromised keys cut them off" in out
    code, out, err = await run_registry("keys", "repair", "--yes", env=_env(settings))
    assert code == 0, (out, err)
    assert await _repair_records(app) == []
    assert await _crl_serials(client) == listed


async def test_a_key_row_edited_in_the_database_is_named_and_not_repaired(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    """A document key taken out of the CRL behind the registry's back fails its seal: check names it, repair does not
    seal over it."""
    _world, facts, _old_pdf, _new_pdf = await _rotated_body(app, client)
    d1, _d2 = await _document_kids(app)
    await _mark_as_before_the_rule(app, facts["old_kid"], utcnow())
    async with transaction(app.state.sessions) as session:
        await session.execute(text("UPDATE signing_keys SET status = 'compromised' WHERE kid = :k"), {"k": d1})

    code, out, err = await run_registry("keys", "check", env=_env(settings))
    assert code == 1, (out, err)
    assert f"the seal of key {d1} does not check out" in out, out
    code, out, err = await run_registry("keys", "repair", "--yes", env=_env(settings))
    assert code == 1, (out, err)
    assert await _repair_records(app) == []
