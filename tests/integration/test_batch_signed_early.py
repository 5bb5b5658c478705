"""Rows signed before they are recorded: a large batch's rows go to the worker processes a screened chunk at a time,
with the facts they will most likely be issued with (``drafting.Begun``), and whatever changes meanwhile — a number
drawn again, a holder on record masked otherwise, a correction's holder known only by index, a row refused when
screening closes — the certificate stored is always signed and sealed over what is stored."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlmodel import col

from registry import workers
from registry.certificates import awards, drafting, imports, minting, rows, signing
from registry.certificates.awards import Screener
from registry.certificates.models import Certificate
from registry.context import RegistryContext
from registry.db import transaction, utcnow
from registry.holders import service as holders
from registry.holders.identity import IdType
from registry.holders.models import Holder
from registry.keys.models import SigningKey
from tests.factories import batch_rows, bearer, certificate_body, ready_issuer, resident_id, row_count

ROWS = 300  # over the default threshold (200): read by two workers in two chunks of 150
BATCHES = "/v1/certificate-batches"


async def _sealed_over_what_is_stored(app: FastAPI, answered: list[dict[str, Any]]) -> int:
    """Asserts that every certificate answered was sealed and signed over what is stored of it (its holder's masked
    number as the holders table has it), exactly as sealing it in process would; returns how many were checked."""
    claim_codes = {c["number"]: c["claim_code"] for c in answered}
    ctx: RegistryContext = app.state.context
    async with transaction(app.state.sessions) as session:
        stored = (
            await session.execute(
                select(Certificate, Holder).join(Holder).where(col(Certificate.number).in_(list(claim_codes)))
            )
        ).all()
        kids = {certificate.kid for certificate, _holder in stored}
        keys = (await session.execute(select(SigningKey).where(col(SigningKey.kid).in_(kids)))).scalars()
        signers = {key.kid: ctx.keyring.signer(key) for key in keys}
    assert len(stored) == len(answered)
    for certificate, holder in stored:
        sealing = minting.Sealing(ctx.box, signers[certificate.kid], "BJ-AI-COMMITTEE", certificate.issued_at)
        facts: minting.RowFacts = (
            str(certificate.id),
            certificate.number,
            claim_codes[certificate.number],
            certificate.cert_type,
            certificate.catalogue_code,
            certificate.catalogue_version,
            certificate.level,
            certificate.holder_name,
            certificate.awarded_on,
            certificate.valid_until,
            certificate.evaluation_batch,
            holder.id_type,
            holder.id_masked,
            holder.id_index,
        )
        in_process = minting.seal_row(sealing, signers[certificate.kid], facts)
        stored_seals = (certificate.claim_code_hash, certificate.signature, certificate.record_seal)
        assert stored_seals == in_process, certificate.number
        # The status seal binds the slot, taken after the rows were handed over: made in this process.
        assert signing.status_seal_intact(ctx.box, certificate.status_seal, certificate.model_dump())
    return len(stored)


async def test_a_batch_signed_in_workers_stores_what_signing_in_process_would(
    pooled_app: FastAPI, pooled_client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(pooled_app, pooled_client)
    response = await pooled_client.post(
        BATCHES, json={"certificates": batch_rows(ROWS)}, headers={**bearer(issuer), "Idempotency-Key": "pooled"}
    )
    assert response.status_code == 201, response.text
    assert workers.running()
    assert await _sealed_over_what_is_stored(pooled_app, response.json()["certificates"]) == ROWS


def _steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What a batch does, in order: each chunk screened, each hand-over to the workers, the holders recorded."""
    steps: list[str] = []
    hand_over, upsert, add = minting.hand_over, holders.upsert, Screener.add

    def handing_over(*args: Any) -> minting.Handed:
        steps.append(f"hand over {len(args[2])}")
        return hand_over(*args)

    async def upserting(*args: Any) -> Any:
        steps.append("record holders")
        return await upsert(*args)

    async def screening(screener: Screener, awards: Any) -> None:
        steps.append(f"screen {len(awards)}")
        await add(screener, awards)

    monkeypatch.setattr(minting, "hand_over", handing_over)
    monkeypatch.setattr(holders, "upsert", upserting)
    monkeypatch.setattr(Screener, "add", screening)
    return steps


async def test_the_workers_sign_while_the_rows_are_screened_and_the_holders_recorded(
    pooled_app: FastAPI, pooled_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer = await ready_issuer(pooled_app, pooled_client)
    steps = _steps(monkeypatch)
    response = await pooled_client.post(
        BATCHES, json={"certificates": batch_rows(ROWS)}, headers={**bearer(issuer), "Idempotency-Key": "early"}
    )
    assert response.status_code == 201, response.text
    # Two workers read the 300 rows in two chunks; each chunk's rows go to be signed as soon as they are screened.
    assert steps == ["screen 150", "hand over 150", "screen 150", "hand over 150", "record holders"]
    assert await _sealed_over_what_is_stored(pooled_app, response.json()["certificates"]) == ROWS


async def test_the_key_and_the_time_are_chosen_once_the_bodys_turn_is_taken(
    pooled_app: FastAPI, pooled_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for every other issuance: a batch waiting for another of the same body signs with the key, and dates its
    certificates, as of its own turn."""
    issuer = await ready_issuer(pooled_app, pooled_client)
    order: list[str] = []
    take_turn, begin = awards._one_issuance_at_a_time, drafting.begin

    async def taking_turn(*args: Any, **kwargs: Any) -> None:
        order.append("turn")
        await take_turn(*args, **kwargs)

    async def beginning(*args: Any, **kwargs: Any) -> Any:
        order.append("key and time")
        return await begin(*args, **kwargs)

    monkeypatch.setattr(awards, "_one_issuance_at_a_time", taking_turn)
    monkeypatch.setattr(drafting, "begin", beginning)
    response = await pooled_client.post(
        BATCHES, json={"certificates": batch_rows(ROWS)}, headers={**bearer(issuer), "Idempotency-Key": "turn"}
    )
    assert response.status_code == 201, response.text
    assert order == ["turn", "key and time"]


async def test_a_batch_with_a_bad_row_stops_handing_rows_over_and_issues_nothing(
    pooled_app: FastAPI, pooled_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer = await ready_issuer(pooled_app, pooled_client)
    steps = _steps(monkeypatch)
    cancelled: list[int] = []
    cancel = workers.Handed.cancel

    def cancelling(handed: workers.Handed[Any, Any]) -> None:
        if getattr(handed.function, "func", None) is minting.seal_rows:  # not the reading's hand-over
            cancelled.append(len(handed.items))
        cancel(handed)

    monkeypatch.setattr(workers.Handed, "cancel", cancelling)
    given = batch_rows(ROWS)
    given[199]["level"] = "doctoral"  # in the second chunk, which is then not handed over; the first is dropped
    before = await row_count(pooled_app, "certificates")
    response = await pooled_client.post(
        BATCHES, json={"certificates": given}, headers={**bearer(issuer), "Idempotency-Key": "bad"}
    )
    assert response.status_code == 422, response.text
    assert [error["row"] for error in response.json()["errors"]] == [200]
    assert steps == ["screen 150", "hand over 150", "screen 150"]
    assert set(cancelled) == {150}  # what the workers had not started of the first chunk: dropped
    assert await row_count(pooled_app, "certificates") == before


def _write_csv(path: Path, given: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(rows.CSV_COLUMNS)
        for row in given:
            holder = row["holder"]
            cells = [row["cert_type"], row["catalogue_code"], row["level"], holder["name"], holder["id_type"]]
            writer.writerow([*cells, holder["id_number"], row["awarded_on"], "", row["evaluation_batch"] or ""])


@pytest.mark.parametrize(
    ("refused", "steps_before"),
    [
        # A live duplicate is refused only when screening closes, after its row was handed over with the others.
        (1, ["screen 150", "hand over 150", "screen 150", "hand over 150"]),
        # A row refused as it is screened: nothing more is handed over from there on.
        (5, ["screen 150", "screen 150"]),
    ],
)
async def test_an_import_chunk_with_a_refused_row_is_begun_again_without_it(
    pooled_app: FastAPI,
    pooled_client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    refused: int,
    steps_before: list[str],
) -> None:
    """The import records the other rows, begun again without the refused one, each signed over what is stored."""
    issuer = await ready_issuer(pooled_app, pooled_client)
    given = batch_rows(ROWS)
    if refused == 1:
        held = await pooled_client.post(
            BATCHES, json={"certificates": given[:1]}, headers={**bearer(issuer), "Idempotency-Key": "held"}
        )
        assert held.status_code == 201, held.text
    else:
        given[refused - 1]["level"] = "doctoral"  # no such level of the entry
    _write_csv(tmp_path / "round.csv", given)
    steps = _steps(monkeypatch)
    summary = await imports.run_import(
        pooled_app.state.context, pooled_app.state.sessions, path=tmp_path / "round.csv", issuer_code="BJ-AI-COMMITTEE"
    )
    assert (summary.issued, summary.rejected) == (ROWS - 1, 1)
    assert steps == [*steps_before, "hand over 299", "record holders"]
    assert summary.issued_file is not None
    with summary.issued_file.open(encoding="utf-8") as handle:
        issued = list(csv.DictReader(handle))
    assert await _sealed_over_what_is_stored(pooled_app, issued) == ROWS - 1


async def test_a_dry_run_hands_nothing_over(
    pooled_app: FastAPI, pooled_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer = await ready_issuer(pooled_app, pooled_client)
    steps = _steps(monkeypatch)
    response = await pooled_client.post(
        f"{BATCHES}?dry_run=true",
        json={"certificates": batch_rows(ROWS)},
        headers={**bearer(issuer), "Idempotency-Key": "dry"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"dry_run": True, "valid": True, "count": ROWS}
    assert steps == ["screen 150", "screen 150"]


async def test_a_row_whose_number_was_taken_after_the_hand_over_is_signed_over_its_new_number(
    pooled_app: FastAPI, pooled_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer = await ready_issuer(pooled_app, pooled_client)
    first = await pooled_client.post(
        BATCHES, json={"certificates": batch_rows(3)}, headers={**bearer(issuer), "Idempotency-Key": "first"}
    )
    taken = first.json()["certificates"][0]["number"]
    calls: list[int] = []
    new_numbers = drafting.new_numbers_for

    def drawing(accepted: Any, *, issuer: Any) -> list[str]:
        calls.append(len(accepted))
        numbers = new_numbers(accepted, issuer=issuer)
        return [taken, *numbers[1:]] if len(calls) == 1 else numbers  # the first row's first number: already issued

    monkeypatch.setattr(drafting, "new_numbers_for", drawing)
    rows = [
        certificate_body(holder={"name": f"学员{i}", "id_type": "resident_id", "id_number": resident_id(sequence=i)})
        for i in range(100, 100 + ROWS)
    ]
    response = await pooled_client.post(
        BATCHES, json={"certificates": rows}, headers={**bearer(issuer), "Idempotency-Key": "second"}
    )
    assert response.status_code == 201, response.text
    answered = response.json()["certificates"]
    assert taken not in {c["number"] for c in answered}
    assert calls == [150, 150, 1]  # drawn a screened chunk at a time, then again for the row whose number was taken
    assert await _sealed_over_what_is_stored(pooled_app, answered) == ROWS


async def test_a_correction_with_the_workers_on_is_signed_over_its_holder_on_record(
    pooled_app: FastAPI, pooled_client: httpx.AsyncClient
) -> None:
    """A correction knows its holder only by index (the number is never decrypted to re-issue): it is handed over
    with no masked number and signed again, in process, over the one on record."""
    issuer = await ready_issuer(pooled_app, pooled_client)
    first = await pooled_client.post(
        BATCHES, json={"certificates": batch_rows(1)}, headers={**bearer(issuer), "Idempotency-Key": "to-correct"}
    )
    number = first.json()["certificates"][0]["number"]
    corrected = await pooled_client.post(
        f"/v1/certificates/{number}/correct", json={"reason": "姓名有误", "holder_name": "周玖"}, headers=bearer(issuer)
    )
    assert corrected.status_code == 201, corrected.text
    assert await _sealed_over_what_is_stored(pooled_app, [corrected.json()]) == 1


async def test_a_holder_on_record_masked_otherwise_is_signed_as_the_record_has_it(
    pooled_app: FastAPI, pooled_client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(pooled_app, pooled_client)
    ctx: RegistryContext = pooled_app.state.context
    known = resident_id(sequence=7)
    async with transaction(pooled_app.state.sessions) as session:
        index = holders.id_index(ctx, id_type=IdType.RESIDENT_ID, id_number=known)
        session.add(
            Holder(
                id_type="resident_id",
                id_index=index,
                id_number_encrypted=ctx.box.encrypt(known.encode(), context=f"holder:{index}"),
                id_masked="11**********0007",  # as an older masking rule wrote it: not what masking gives today
                created_at=utcnow(),
            )
        )
    response = await pooled_client.post(
        BATCHES, json={"certificates": batch_rows(ROWS)}, headers={**bearer(issuer), "Idempotency-Key": "masked"}
    )
    assert response.status_code == 201, response.text
    assert await _sealed_over_what_is_stored(pooled_app, response.json()["certificates"]) == ROWS
    async with transaction(pooled_app.state.sessions) as session:
        masks = set(
            (await session.execute(select(col(Holder.id_masked)).where(col(Holder.id_index) == index))).scalars()
        )
    assert masks == {"11**********0007"}
