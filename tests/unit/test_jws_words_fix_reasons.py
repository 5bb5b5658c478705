"""Why a credential or a status list is refused is said in the reader's language, down to the JWS layer: each refusal
of registry.keys.jws is a JWSRefused (still a ValueError, as its lenient callers catch) carrying a message; PyJWT's
refusals of a token's shape and status_lists' refusals of an encodedList are worded here, never passed on in English.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.auth.jwt_words import shape_refusal
from registry.certificates import signing
from registry.credentials.offline import MOST_LIST_BYTES, verify_credential
from registry.errors import JWSRefused
from registry.i18n import Message, translate
from registry.keys import jws, signers
from tests.unit.test_offline_strictness import MESSAGE_LIST, NOW, _credential, _jwks, _message_list, _sign, _step

# An English word of three letters or more, other than the names of formats and fields a Chinese sentence keeps.
KEPT = {"base64url", "JSON", "JWS", "crit", "kid", "gzip", "encodedList", "multibase", "Ed25519", "EdDSA", "none"}
ENGLISH_WORD = re.compile(r"\b[A-Za-z]{3,}\b")


def _english(said: str) -> list[str]:
    return [word for word in ENGLISH_WORD.findall(said) if word not in KEPT]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _header(**fields: Any) -> str:
    return _b64(json.dumps({"alg": "Ed25519", "kid": "k1", "typ": "vc+jwt", **fields}).encode())


KEY = Ed25519PrivateKey.generate()
CHECK = signers.check_for_key(KEY.public_key())


def _signed(header: str, payload: bytes) -> str:
    signing_input = f"{header}.{_b64(payload)}"
    return f"{signing_input}.{_b64(KEY.sign(signing_input.encode()))}"


REFUSED = {
    "two parts": f"{_header()}.{_b64(b'{}')}",
    "header not base64url": f"!!!.{_b64(b'{}')}.AAAA",
    "header not JSON": f"{_b64(b'not json')}.{_b64(b'{}')}.AAAA",
    "header not an object": f"{_b64(b'[]')}.{_b64(b'{}')}.AAAA",
    "crit": f"{_header(crit=['b64'])}.{_b64(b'{}')}.AAAA",
    "another algorithm": f"{_header(alg='HS256')}.{_b64(b'{}')}.AAAA",
    "payload not base64url": f"{_header()}.!!.AAAA",
    "forged signature": f"{_header()}.{_b64(b'{}')}.{_b64(bytes(64))}",
    "payload not an object": _signed(_header(), b"[1]"),
}


@pytest.mark.parametrize("token", REFUSED.values(), ids=REFUSED.keys())
def test_every_refusal_of_the_jws_layer_is_a_value_error_said_in_chinese(token: str) -> None:
    with pytest.raises(JWSRefused) as refused:
        jws.decode(token, CHECK)
    assert isinstance(refused.value, ValueError)  # callers that read leniently still catch it
    assert isinstance(refused.value.reason, Message)
    said = translate(refused.value.reason, "zh")
    assert said != str(refused.value.reason), said  # the catalogue says it
    assert not _english(said), said


def test_a_segment_of_no_base64_length_is_refused_with_a_reason_too() -> None:
    with pytest.raises(JWSRefused) as refused:
        jws.unb64url("A")  # 4n + 1 characters: binascii.Error before, a bare one
    assert not _english(translate(refused.value.reason, "zh"))


def test_the_lenient_callers_of_the_jws_layer_still_answer_as_before() -> None:
    assert signing.verify("!!!..AAAA", b"payload", key=KEY.public_key()) is False
    assert signing.verify(f"{_header()}..A", b"payload", key=KEY.public_key()) is False
    assert jws.decode(_signed(_header(), b'{"sub": "x"}'), CHECK) == {"sub": "x"}


SHAPES = {
    "two parts": "a.b",
    "header padding": "!!!.e30.x",
    "header not an object": "W10.e30.AAAA",
    "header not JSON": f"{_b64(b'not json')}.e30.AAAA",
    "payload padding": "e30.!!.AAAA",
    "crypto padding": "e30.e30.x",
    "kid a number": f"{_header(kid=1)}.e30.AAAA",
    "crit not a list": f"{_header(crit=1)}.e30.AAAA",
}


@pytest.mark.parametrize("token", SHAPES.values(), ids=SHAPES.keys())
def test_why_pyjwt_cannot_read_a_token_is_said_in_chinese_and_says_what_is_wrong(token: str) -> None:
    with pytest.raises(jwt.PyJWTError) as refused:
        jwt.get_unverified_header(token)
    reason = shape_refusal(refused.value)
    said = translate(reason, "zh")
    assert not _english(said), said
    assert reason.template != "its claims are not acceptable"  # a header's fault, not the claims'


@pytest.mark.parametrize(
    ("encoded", "english", "chinese"),
    [
        ("xAAAA", "not multibase base64url", "不是 multibase base64url"),
        ("uA", "is not base64url", "不是 base64url"),
        ("u中文", "is not base64url", "不是 base64url"),
        ("u" + _b64(gzip.compress(bytes(MOST_LIST_BYTES + 1))), "inflates to more than", "解压后超过"),
        ("u" + _b64(gzip.compress(bytes(16)) * 2), "not one whole gzip member", "单个完整 gzip"),
    ],
    ids=["no multibase prefix", "bad padding", "not ascii", "too long", "two gzip members"],
)
def test_why_a_status_list_cannot_be_decoded_is_said_in_the_readers_language(
    encoded: str, english: str, chinese: str
) -> None:
    status_list = _message_list()
    status_list["credentialSubject"]["encodedList"] = encoded
    report = verify_credential(
        _sign(_credential()), jwks=_jwks(), status_lists={MESSAGE_LIST: _sign(status_list)}, now=NOW
    )
    outcome, detail = _step(report, "status")
    assert outcome == "unknown", report.render()
    assert english in detail
    said = translate(detail, "zh").replace(MESSAGE_LIST, "")
    assert chinese in said, said
    assert not _english(said), said


@pytest.mark.parametrize("token", SHAPES.values(), ids=SHAPES.keys())
def test_a_credential_that_is_no_compact_jws_fails_at_format_in_chinese(token: str) -> None:
    report = verify_credential(token, jwks=_jwks(), status_lists={}, now=NOW)
    outcome, detail = _step(report, "format")
    assert outcome == "fail", report.render()
    said = translate(detail, "zh")
    assert said.startswith("不是紧凑格式的 JWS："), said
    assert not _english(said), said
