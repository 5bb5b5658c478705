"""Offline verification holds a credential and its status lists to the standards even when every signature verifies:
the attacker here publishes a JWKS that copies the registry's entries but carries their own key under the same kid, then
signs altered credentials and status lists. Bitstring Status List v1.0 (minimum length, purpose), VC-JOSE-COSE
(``issuer`` matches ``iss``), RFC 7519 (NumericDate time claims) and VC 2.0 (dateTimeStamp validity) each refuse one
alteration; no database, no network."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.certificates.status_lists import encode
from registry.credentials import message_list
from registry.credentials.offline import MOST_LIST_BYTES, Report, verify_credential

CODE = "BJ-AI-COMMITTEE"
ISSUER = f"https://registry.test/v1/issuers/{CODE}"
ELSEWHERE = "https://other.example/issuers/X"
BASE = f"https://registry.test/v1/status-lists/{CODE}/a1b2c3"
MESSAGE_LIST = f"{BASE}-message"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
MINIMUM = 131_072  # Bitstring Status List v1.0 §3.2: minimumNumberOfEntries
KEY = Ed25519PrivateKey.generate()
KID = "k1"
INDEX = 5


def _jwks() -> dict[str, Any]:
    """The registry's entry for the body's key, copied, with the attacker's public key in it."""
    x = jwt.utils.base64url_encode(KEY.public_key().public_bytes_raw()).decode()
    entry = {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": KID, "alg": "EdDSA", "use": "sig"}
    validity = {"valid_from": "2026-01-01T00:00:00+00:00", "valid_until": None}
    return {"keys": [{**entry, "key_use": "certificate", "status": "active", **validity, "issuer_code": CODE}]}


def _sign(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, KEY, algorithm="EdDSA", headers={"kid": KID, "typ": "vc+jwt"})


def _credential(**changes: Any) -> dict[str, Any]:
    claims = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": "urn:uuid:5f1d1c2e-0000-4000-8000-000000000001",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {"id": ISSUER, "type": ["Profile"], "name": "评审委员会"},
        "validFrom": "2026-06-30T00:00:00+08:00",
        "credentialSubject": {"type": ["AchievementSubject"], "certificateNumber": "2026-EAI-01"},
        "credentialStatus": message_list.entry(url=MESSAGE_LIST, index=INDEX),
        "iss": ISSUER,
        "sub": "urn:talent-registry:holder:0123",
        "jti": "urn:uuid:5f1d1c2e-0000-4000-8000-000000000001",
        "iat": int((NOW - timedelta(days=30)).timestamp()),
    }
    return {**claims, **changes}


def _status_list(url: str, purpose: str, *, bits: int, **changes: Any) -> dict[str, Any]:
    """A status list of ``bits`` bits, all clear, signed valid for the hour around NOW."""
    claims = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": ISSUER,
        "validFrom": (NOW - timedelta(minutes=30)).isoformat(),
        "validUntil": (NOW + timedelta(minutes=30)).isoformat(),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": purpose,
            "encodedList": encode(bytes(bits // 8)),
            "ttl": 60_000,
        },
        "iss": ISSUER,
        "jti": url,
        "iat": int((NOW - timedelta(minutes=30)).timestamp()),
    }
    return {**claims, **changes}


def _older_entries() -> list[dict[str, Any]]:
    """The two one-bit entries credentials signed before the message list carry."""
    return [
        {
            "id": f"{BASE}-{purpose}#{INDEX}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": purpose,
            "statusListIndex": str(INDEX),
            "statusListCredential": f"{BASE}-{purpose}",
        }
        for purpose in ("revocation", "suspension")
    ]


def _verify(credential: dict[str, Any], *lists: dict[str, Any]) -> Report:
    tokens = {status_list["id"]: _sign(status_list) for status_list in lists}
    return verify_credential(_sign(credential), jwks=_jwks(), status_lists=tokens, now=NOW)


def _step(report: Report, name: str) -> tuple[str, str]:
    [step] = [step for step in report.steps if step.name == name]
    return step.outcome, step.detail


def _message_list(**changes: Any) -> dict[str, Any]:
    return _status_list(MESSAGE_LIST, "message", bits=MINIMUM * message_list.STATUS_SIZE, **changes)


def test_a_credential_and_list_as_the_registry_signs_them_verify() -> None:
    report = _verify(_credential(), _message_list())
    assert report.verdict == "VALID", report.render()


def test_the_older_one_bit_lists_of_the_minimum_length_verify() -> None:
    lists = [_status_list(f"{BASE}-{purpose}", purpose, bits=MINIMUM) for purpose in ("revocation", "suspension")]
    report = _verify(_credential(credentialStatus=_older_entries()), *lists)
    assert report.verdict == "VALID", report.render()


# Defect 1: a status list shorter than minimumNumberOfEntries is a STATUS_LIST_LENGTH_ERROR.


def test_a_two_bit_list_of_131072_bits_holds_too_few_entries() -> None:
    short = _status_list(MESSAGE_LIST, "message", bits=MINIMUM)  # 65,536 two-bit entries
    report = _verify(_credential(), short)
    assert report.verdict == "UNKNOWN", report.render()
    outcome, detail = _step(report, "status")
    assert outcome == "unknown"
    assert "65,536 entries" in detail
    assert "STATUS_LIST_LENGTH_ERROR" in detail


def test_one_bit_lists_of_52425_entries_hold_too_few_entries() -> None:
    lists = [_status_list(f"{BASE}-{purpose}", purpose, bits=52_432) for purpose in ("revocation", "suspension")]
    report = _verify(_credential(credentialStatus=_older_entries()), *lists)
    assert not report.valid, report.render()
    assert _step(report, "status")[0] == "unknown"
    assert "STATUS_LIST_LENGTH_ERROR" in _step(report, "status")[1]


# Defect 2: issuer (a string, or an object's id) must be the JWT's iss.


@pytest.mark.parametrize(
    "issuer",
    [
        pytest.param({"id": ELSEWHERE, "type": ["Profile"], "name": "X"}, id="object naming another issuer"),
        pytest.param(ELSEWHERE, id="string naming another issuer"),
        pytest.param({"type": ["Profile"], "name": "X"}, id="object without an id"),
        pytest.param(None, id="no issuer"),
    ],
)
def test_a_credential_whose_issuer_is_not_its_iss_fails_at_key(issuer: Any) -> None:
    report = _verify(_credential(issuer=issuer), _message_list())
    assert report.verdict == "NOT VALID", report.render()
    outcome, detail = _step(report, "key")
    assert outcome == "fail"
    assert "iss" in detail


def test_an_issuer_given_as_the_iss_string_verifies() -> None:
    report = _verify(_credential(issuer=ISSUER), _message_list())
    assert report.verdict == "VALID", report.render()


@pytest.mark.parametrize("issuer", [ELSEWHERE, {"id": ELSEWHERE}], ids=["string", "object"])
def test_a_status_list_whose_issuer_is_not_its_iss_does_not_count(issuer: Any) -> None:
    report = _verify(_credential(), _message_list(issuer=issuer))
    assert not report.valid, report.render()
    outcome, detail = _step(report, "status")
    assert outcome == "unknown"
    assert ELSEWHERE in detail


# Defect 3: exp, iat and nbf are NumericDates — JSON numbers a clock can hold — or the credential fails, saying why.


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"iat": "abc"}, id="iat text"),
        pytest.param({"iat": "1796408910"}, id="iat digits as text"),
        pytest.param({"iat": 10**20}, id="iat past any calendar"),
        pytest.param({"iat": True}, id="iat boolean"),
        pytest.param({"iat": float("nan")}, id="iat NaN"),
        pytest.param({"iat": None}, id="iat null"),
        pytest.param({"exp": "1796408910"}, id="exp text"),
        pytest.param({"nbf": 10**20}, id="nbf past any calendar"),
    ],
)
def test_a_time_claim_that_is_not_a_numeric_date_fails_at_key(changes: dict[str, Any]) -> None:
    report = _verify(_credential(**changes), _message_list())
    assert report.verdict == "NOT VALID", report.render()
    outcome, detail = _step(report, "key")
    assert outcome == "fail"
    assert next(iter(changes)) in detail


def test_a_credential_without_iat_fails_at_key() -> None:
    claims = _credential()
    del claims["iat"]
    outcome, detail = _step(_verify(claims, _message_list()), "key")
    assert (outcome, "iat" in detail) == ("fail", True)


def test_a_numeric_iat_with_a_fraction_still_verifies() -> None:
    iat = (NOW - timedelta(days=30)).timestamp() + 0.5
    assert _verify(_credential(iat=iat), _message_list()).verdict == "VALID"


def test_a_credential_past_its_exp_or_before_its_nbf_fails_at_dates() -> None:
    expired = _verify(_credential(exp=int((NOW - timedelta(days=1)).timestamp())), _message_list())
    early = _verify(_credential(nbf=int((NOW + timedelta(days=1)).timestamp())), _message_list())
    assert [_step(expired, "dates")[0], _step(early, "dates")[0]] == ["fail", "fail"]


@pytest.mark.parametrize("iat", ["1796408910", 10**20, "abc"])
def test_a_status_list_whose_iat_is_not_a_numeric_date_does_not_count(iat: Any) -> None:
    report = _verify(_credential(), _message_list(iat=iat))
    assert not report.valid, report.render()
    outcome, detail = _step(report, "status")
    assert outcome == "unknown"
    assert "iat" in detail


def test_the_command_says_why_a_text_iat_fails_and_shows_no_traceback(tmp_path: Path) -> None:
    credential, jwks, status_list = tmp_path / "c.vc.jwt", tmp_path / "jwks.json", tmp_path / "list.vc.jwt"
    credential.write_text(_sign(_credential(iat="abc")), encoding="utf-8")
    jwks.write_text(json.dumps(_jwks()), encoding="utf-8")
    status_list.write_text(_sign(_message_list()), encoding="utf-8")
    args = [str(credential), "--jwks", str(jwks), "--status-list", str(status_list), "--offline"]
    run = subprocess.run(  # noqa: S603 - this interpreter, the project's own command
        [sys.executable, "-m", "cli", "verify-credential", *args], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert any(line.startswith("key") and "FAIL" in line and "iat" in line for line in run.stdout.splitlines())
    assert "RESULT     NOT VALID" in run.stdout


# Defect 4: validFrom and validUntil are dateTimeStamps; a status list not yet valid says nothing; purposes must match.


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"validFrom": "2026-06-30"}, id="validFrom a date only"),
        pytest.param({"validFrom": "2026-06-30T00:00:00"}, id="validFrom without a time zone"),
        pytest.param({"validFrom": "2026-06-30 00:00:00+08:00"}, id="validFrom with a space for T"),
        pytest.param({"validFrom": "20260630T000000Z"}, id="validFrom in basic format"),
        pytest.param({"validFrom": 1782748800}, id="validFrom a number"),
        pytest.param({"validUntil": "2099-06-30"}, id="validUntil a date only"),
        pytest.param({"validUntil": "someday"}, id="validUntil not a date"),
    ],
)
def test_a_validity_date_that_is_not_a_date_time_stamp_fails_at_dates(changes: dict[str, Any]) -> None:
    report = _verify(_credential(**changes), _message_list())
    assert report.verdict == "NOT VALID", report.render()
    outcome, detail = _step(report, "dates")
    assert outcome == "fail"
    assert next(iter(changes)) in detail


def test_validity_dates_in_utc_with_z_and_a_fraction_verify() -> None:
    changes = {"validFrom": "2026-06-29T16:00:00.000Z", "validUntil": "2099-06-30T15:59:59Z"}
    assert _verify(_credential(**changes), _message_list()).verdict == "VALID"


def test_a_status_list_not_yet_valid_gives_unknown() -> None:
    report = _verify(_credential(), _message_list(validFrom="2099-01-01T00:00:00+00:00"))
    assert report.verdict == "UNKNOWN", report.render()
    outcome, detail = _step(report, "status")
    assert outcome == "unknown"
    assert "not yet valid" in detail


@pytest.mark.parametrize("field", ["validFrom", "validUntil"])
def test_a_status_list_whose_dates_lack_a_time_zone_gives_unknown(field: str) -> None:
    report = _verify(_credential(), _message_list(**{field: "2026-12-04T12:00:00"}))
    assert not report.valid, report.render()
    outcome, detail = _step(report, "status")
    assert outcome == "unknown"
    assert f"{field} that is not a date-time with a time zone" in detail


def test_a_status_list_whose_gzip_is_corrupt_gives_unknown_not_a_crash() -> None:
    packed = gzip.compress(bytes(MINIMUM // 4))
    corrupt = packed[:10] + b"\xff" * 20 + packed[-8:]  # a gzip header over a broken deflate stream: zlib.error
    encoded = "u" + base64.urlsafe_b64encode(corrupt).rstrip(b"=").decode()
    status_list = _message_list()
    status_list["credentialSubject"]["encodedList"] = encoded
    report = _verify(_credential(), status_list)
    assert _step(report, "status") == ("unknown", f"status list {MESSAGE_LIST} cannot be decoded")


def test_an_entry_pointing_at_a_list_of_another_purpose_says_the_purposes_differ() -> None:
    older = _older_entries()
    older[0]["statusListCredential"] = MESSAGE_LIST  # a revocation entry naming the two-bit message list
    suspension = _status_list(f"{BASE}-suspension", "suspension", bits=MINIMUM)
    report = _verify(_credential(credentialStatus=older), _message_list(), suspension)
    assert not report.valid, report.render()
    outcome, detail = _step(report, "status")
    assert outcome == "unknown"
    assert "STATUS_VERIFICATION_ERROR" in detail
    assert "'message'" in detail
    assert "'revocation'" in detail
    assert "does not verify" not in detail


@pytest.mark.parametrize("size", ["2", 2.0, True, 0, -1, 9, None])
def test_a_status_size_that_is_not_a_whole_number_of_bits_fails(size: Any) -> None:
    entry = {**message_list.entry(url=MESSAGE_LIST, index=INDEX), "statusSize": size}
    report = _verify(_credential(credentialStatus=entry), _message_list())
    outcome, detail = _step(report, "status")
    assert outcome == "fail", report.render()
    assert "statusSize that is not a whole number of bits" in detail


@pytest.mark.parametrize(
    "messages",
    [None, [], [{"status": "0x0", "message": "valid"}, {"status": "0x1", "message": "suspended"}], "valid"],
    ids=["missing", "empty", "two-of-four", "not-a-list"],
)
def test_a_two_bit_entry_must_say_what_each_of_its_four_values_means(messages: Any) -> None:
    entry = message_list.entry(url=MESSAGE_LIST, index=INDEX)
    if messages is None:
        del entry["statusMessage"]
    else:
        entry["statusMessage"] = messages
    report = _verify(_credential(credentialStatus=entry), _message_list())
    outcome, detail = _step(report, "status")
    assert outcome == "fail", report.render()
    assert "does not give a statusMessage for each of its 4 values" in detail


def test_a_status_list_that_inflates_past_the_limit_is_refused_not_read() -> None:
    bomb = gzip.compress(bytes(MOST_LIST_BYTES + 1))  # about 4 KiB of gzip
    assert len(bomb) < 10_000
    status_list = _message_list()
    status_list["credentialSubject"]["encodedList"] = "u" + base64.urlsafe_b64encode(bomb).rstrip(b"=").decode()
    report = _verify(_credential(), status_list)
    outcome, detail = _step(report, "status")
    assert outcome == "unknown"
    assert "inflates to more than" in detail


def test_status_values_written_with_other_hex_digits_count_as_the_same_values() -> None:
    entry = message_list.entry(url=MESSAGE_LIST, index=INDEX)
    entry["statusMessage"] = [
        {"status": status, "message": message}
        for status, message in (("0x00", "valid"), ("0X1", "suspended"), ("0x02", "revoked"), ("0x3", "revoked"))
    ]
    report = _verify(_credential(credentialStatus=entry), _message_list())
    assert report.verdict == "VALID", report.render()


@pytest.mark.parametrize("written", ["0x+1", "0x 1", "0x0_1", "0x１"])
def test_a_status_that_is_not_an_ascii_hex_string_is_no_status(written: str) -> None:
    entry = message_list.entry(url=MESSAGE_LIST, index=INDEX)
    entry["statusMessage"][1]["status"] = written  # in place of 0x1
    outcome, detail = _step(_verify(_credential(credentialStatus=entry), _message_list()), "status")
    assert outcome == "fail"
    assert "does not give a statusMessage for each of its 4 values" in detail


@pytest.mark.parametrize("index", ["5_0", "+5", " 5", "٥", True, 5.9, 5])
def test_an_index_that_is_not_a_base_10_string_is_no_index(index: Any) -> None:
    entry = {**message_list.entry(url=MESSAGE_LIST, index=INDEX), "statusListIndex": index}
    outcome, detail = _step(_verify(_credential(credentialStatus=entry), _message_list()), "status")
    assert (outcome, detail) == ("fail", "a status entry has no usable index")


@pytest.mark.parametrize("after", [b"trailing bytes", gzip.compress(b"\xff" * 16)], ids=["garbage", "second-member"])
def test_a_status_list_with_more_than_one_gzip_member_cannot_be_decoded(after: bytes) -> None:
    packed = gzip.compress(bytes(MINIMUM * message_list.STATUS_SIZE // 8)) + after
    status_list = _message_list()
    status_list["credentialSubject"]["encodedList"] = "u" + base64.urlsafe_b64encode(packed).rstrip(b"=").decode()
    outcome, detail = _step(_verify(_credential(), status_list), "status")
    assert outcome == "unknown"
    assert "not one whole gzip member" in detail
