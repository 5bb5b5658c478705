"""The per-row pieces of batch issuance, made cheaper, still give exactly what they gave before: the same audit hash,
the same JWS bytes as PyJWT, claim codes of the same shape and entropy, the same grouped number."""

from __future__ import annotations

import hashlib
import random
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from registry import crockford
from registry.audit import service as audit
from registry.audit.models import AuditRecord
from registry.auth.claim_codes import claim_code_problem, new_claim_code, new_claim_codes, normalize_claim_code
from registry.canonical import canonical_json, iso_time
from registry.certificates import drafting, numbering, signing
from registry.keys.signers import ED25519, KeySigner

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@pytest.mark.parametrize(
    "details",
    [
        {},
        {"issuer": "BJ-AI-COMMITTEE", "level": "senior", "kid": "k-1", "holder_ref": "0123456789abcdef"},
        {"reason": "更正 ünïcode", "nested": {"b": [1, 2.5, None, True], "a": "x"}, "supersedes": None},
    ],
)
def test_the_audit_hash_of_a_plain_row_is_the_hash_of_the_same_record_as_a_model(details: dict[str, object]) -> None:
    at = datetime(2026, 11, 22, 8, 30, 15, 123456, tzinfo=UTC)
    columns: dict[str, Any] = {
        "at": at,
        "actor": "client:abc",
        "action": "certificate.issued",
        "object_type": "certificate",
        "object_id": "BJT2026SM3JSP32P",
        "purpose": "batch issuance",
        "details": details,
    }
    prev_hash = "ab" * 32
    record = AuditRecord(**columns, prev_hash=prev_hash, hash="")
    row = {**columns, "prev_hash": prev_hash, "hash": ""}
    assert audit.fields_hash(prev_hash, row) == audit.record_hash(prev_hash, record)
    assert audit.fields_hash(audit.GENESIS_HASH, columns) == audit.record_hash(audit.GENESIS_HASH, record)
    assert audit.fields_hash(prev_hash, {**row, "purpose": "other"}) != audit.record_hash(prev_hash, record)
    # Prepared before the chain is held, dated after: the same bytes, so the same hash.
    entry = audit.Entry(
        **{name: columns[name] for name in ("action", "object_type", "object_id", "purpose", "details")}
    )
    before, after = audit.prepare(entry, actor=audit.Actor(columns["actor"]))[1:]
    dated = before + b'"at":' + canonical_json(at.isoformat()) + after
    assert hashlib.sha256(prev_hash.encode() + b"\n" + dated).hexdigest() == audit.record_hash(prev_hash, record)


def test_a_remembered_time_is_written_with_its_own_offset() -> None:
    utc = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    beijing = utc.astimezone(timezone(timedelta(hours=8)))
    assert utc == beijing
    assert [iso_time(utc), iso_time(beijing), iso_time(utc)] == [utc.isoformat(), beijing.isoformat(), utc.isoformat()]
    assert iso_time(beijing) == "2026-11-22T17:00:00+08:00"


@pytest.mark.parametrize("kid", ["k1", "BJ-AI-COMMITTEE-2026-01", "ключ-1"])
@pytest.mark.parametrize(
    "payload", [b"", b'{"v":1}', '{"holder":{"name":"王伟"}}'.encode(), bytes(range(256)), b"x" * 5000]
)
def test_sign_gives_the_bytes_pyjwt_gives_and_they_verify(kid: str, payload: bytes) -> None:
    key = Ed25519PrivateKey.generate()
    signature = signing.sign(payload, signer=KeySigner(kid, ED25519, key))
    # PyJWT names Ed25519 only "EdDSA": a private PyJWS with RFC 9864's name registered writes what we write.
    pyjws = jwt.PyJWS()
    pyjws.register_algorithm("Ed25519", OKPAlgorithm())
    headers = {"kid": kid, "typ": signing.SIGNATURE_TYPE}
    expected = pyjws.encode(payload, key, algorithm="Ed25519", headers=headers, is_payload_detached=True)
    assert signature == expected
    # Certificates signed before RFC 9864 say "EdDSA": they still verify.
    legacy = jwt.api_jws.encode(payload, key, algorithm="EdDSA", headers=headers, is_payload_detached=True)
    assert signing.verify(legacy, payload, key=key.public_key())
    assert signing.verify(signature, payload, key=key.public_key())
    assert signing.signature_kid(signature) == kid
    assert not signing.verify(signature, payload + b" ", key=key.public_key())
    assert not signing.verify(signature, payload, key=Ed25519PrivateKey.generate().public_key())


def test_claim_codes_are_twelve_crockford_characters_in_groups_of_four_each_uniform() -> None:
    codes = [new_claim_code() for _ in range(4000)]
    shape = re.compile(f"[{CROCKFORD}]{{4}}-[{CROCKFORD}]{{4}}-[{CROCKFORD}]{{4}}")
    assert all(shape.fullmatch(code) for code in codes)
    assert all(len(normalize_claim_code(code)) == 12 for code in codes)
    assert normalize_claim_code(codes[0].lower().replace("-", " ")) == codes[0].replace("-", "")
    assert len(set(codes)) == len(codes)
    for position in range(12):
        # 32 symbols, about 125 draws each: every position uses the whole alphabet, none far from uniform.
        counts = Counter(normalize_claim_code(code)[position] for code in codes)
        assert set(counts) == set(CROCKFORD)
        assert max(counts.values()) < 250


def test_grouping_a_canonical_number_is_format_number() -> None:
    for year in (1999, 2026):
        for cert_type in ("title", "skill"):
            number = numbering.new_number(region="BJ", cert_type=cert_type, year=year)
            assert numbering.group_canonical(number) == numbering.format_number(number)
    assert numbering.group_canonical("BJT2025SM3JSP32P") == "BJ-T-2025-SM3JSP32-P"


def _serving(data: bytes) -> Any:
    """An ``rng`` that hands out ``data`` in order, as the system's source would hand out fresh bytes."""
    position = 0

    def rng(count: int) -> bytes:
        nonlocal position
        position += count
        return data[position - count : position]

    return rng


def test_numbers_drawn_for_a_whole_batch_are_the_numbers_drawn_one_by_one_from_the_same_bytes() -> None:
    kinds: list[tuple[Any, int]] = [("title", 2025), ("skill", 2026), ("title", 1900), ("skill", 9999)] * 25
    compared = 0
    for seed in range(100):
        data = random.Random(seed).randbytes(5 * len(kinds))
        one_rng = _serving(data)
        try:  # a stream with a serial whose check would be "*" is read differently (redrawn at once, or at the end)
            singly = [numbering.new_number(region="BJ", cert_type=t, year=y, rng=one_rng) for t, y in kinds]
        except ValueError:
            continue
        assert numbering.new_numbers(region="BJ", kinds=kinds, rng=_serving(data)) == singly
        compared += 1
    assert compared > 0  # about (36/37)**100 = 6 % of the seeds
    numbers = numbering.new_numbers(region="TJ", kinds=kinds)
    assert all(numbering.is_valid_number(number) for number in numbers)
    assert [n[2:7] for n in numbers] == [f"{'T' if t == 'title' else 'S'}{y}" for t, y in kinds]


def test_a_serial_of_a_batch_whose_check_would_be_a_star_is_drawn_again_on_its_own() -> None:
    star = next(
        bytes([a, b, 0, 0, 0])
        for a in range(256)
        for b in range(256)
        if numbering._mod37_2("BJT2026" + numbering._crockford_serials(bytes([a, b, 0, 0, 0]), 1)[0]) == 36
    )
    fine = bytes(5)
    drawn = numbering.new_numbers(region="BJ", kinds=[("title", 2026)] * 2, rng=_serving(fine + star + fine))
    assert drawn == [numbering.new_number(region="BJ", cert_type="title", year=2026, rng=_serving(fine))] * 2


def test_serials_are_five_bytes_in_crockford_base32_most_significant_bits_first() -> None:
    assert numbering._crockford_serials(bytes(5), 1) == ["00000000"]
    assert numbering._crockford_serials(b"\xff" * 5, 1) == ["ZZZZZZZZ"]
    value = 0b00001_00010_00011_00100_00101_00110_00111_11111
    assert numbering._crockford_serials(value.to_bytes(5, "big") * 2, 2) == ["1234567Z", "1234567Z"]
    with pytest.raises(ValueError, match="exactly 10 bytes"):
        numbering._crockford_serials(bytes(9), 2)


def test_claim_codes_drawn_for_a_batch_keep_the_first_sixty_bits_of_each_ten_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    value = 0b11111_00000_00001_11110_01010_10101_10000_00001_01111_10001_00111_11100
    ten = (value << 20 | 0xFFFFF).to_bytes(10, "big")  # the 20 bits after the first 60 are not used
    monkeypatch.setattr("secrets.token_bytes", lambda count: ten * (count // 10))
    assert new_claim_codes(3) == ["Z01Y-ANG1-FH7W"] * 3
    assert new_claim_code() == "Z01Y-ANG1-FH7W"


def test_claim_codes_drawn_for_a_batch_are_each_uniform_and_all_different() -> None:
    codes = new_claim_codes(4000)
    assert len(set(codes)) == 4000
    for position in range(12):
        counts = Counter(normalize_claim_code(code)[position] for code in codes)
        assert set(counts) == set(CROCKFORD)
        assert max(counts.values()) < 250


def test_what_recording_draws_keeps_its_secrets_out_of_its_repr() -> None:
    drawn = drafting.Drawn(uuid.uuid4(), "ABCD-EFGH-JKMN", "BJT2026SM3JSP32P", "t" * 24)
    assert "ABCD" not in repr(drawn)
    assert "t" * 24 not in repr(drawn)
    assert "BJT2026SM3JSP32P" in repr(drawn)


def test_crockford_base32_is_five_bits_per_character_most_significant_first_in_crockfords_alphabet() -> None:
    assert crockford.ALPHABET == CROCKFORD
    assert crockford.encode(b"") == ""
    assert crockford.encode(bytes(5)) == "00000000"
    every = int("".join(f"{value:05b}" for value in range(32)), 2).to_bytes(20, "big")  # 0, 1, ..., 31 in turn
    assert crockford.encode(every) == CROCKFORD


def test_a_claim_code_is_read_however_a_person_types_it() -> None:
    """A fixed code holding 0 and 1, so the O/I/L reading is always exercised (an issued code may hold neither)."""
    code = "AB01-CD10-EF0Z"
    for typed in (
        "ab01-cd10-ef0z",
        "ＡＢ０１－ＣＤ１０－ＥＦ０Ｚ",  # full-width, as a Chinese input method gives it
        "AB01—CD10—EF0Z",  # em dashes
        "ABOl CDlO EFOZ",  # O for 0, l for 1, spaces
        "abOI-cdIo-efoz",
    ):
        assert normalize_claim_code(typed) == code.replace("-", ""), typed
    assert claim_code_problem(code) is None
    assert claim_code_problem("AB01-CD10-EF0U") is not None  # U is no letter of Crockford's base32
    assert claim_code_problem("AB01-CD10-EF0") is not None  # 11 characters
