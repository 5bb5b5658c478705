"""Review of 13c6d90 (verify-credential's report in the reader's language): the reasons from the JWS layer are not.

The commit says every reason of `registry verify-credential` is now a _() message. But registry/keys/jws.py raises
ValueError with English text ("the signature does not verify", "not a compact JWS (three dot-separated parts)", "the
header is not base64url JSON (…)") and registry/credentials/offline.py puts ``str(exc)`` of those — and of PyJWT's
errors ("Not enough segments") — into its translated sentences. Under LANG=zh_CN.UTF-8 a forged credential reads
``签名       未通过   签名验证未通过：the signature does not verify``.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.integration.test_import_language import CHINESE
from tests.integration.test_offline import _run

# An English word of three letters or more, in a line that should be all Chinese apart from codes and names.
ENGLISH_WORD = re.compile(r"\b(?:the|not|does|verify|enough|segments|header|payload|signature|JSON)\b", re.I)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A JWKS of one Ed25519 key; a credential naming it whose signature is 64 bytes of nothing; one of two parts."""
    public = Ed25519PrivateKey.generate().public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": _b64(raw), "kid": "k1"}]}))
    header = _b64(json.dumps({"alg": "Ed25519", "kid": "k1", "typ": "vc+jwt"}).encode())
    forged = tmp_path / "forged.jwt"
    forged.write_text(f"{header}.{_b64(b'{}')}.{_b64(bytes(64))}")
    cut = tmp_path / "cut.jwt"
    cut.write_text(f"{header}.{_b64(b'{}')}")
    return jwks, forged, cut


async def test_why_a_signature_or_a_format_fails_is_said_in_chinese_under_a_chinese_locale(tmp_path: Path) -> None:
    jwks, forged, cut = _files(tmp_path)
    # --status-list: --offline wants one named; the check stops long before reading it.
    for credential, step in ((forged, "签名"), (cut, "格式")):
        outcome = await _run(str(credential), "--offline", "--jwks", str(jwks), "--status-list", str(jwks), env=CHINESE)
        assert outcome.code == 1, (outcome.out, outcome.err)
        line = next((line for line in outcome.out.splitlines() if line.startswith(step)), None)
        assert line is not None, outcome.out
        assert "未通过" in line, line
        # Before: "签名验证未通过：the signature does not verify", "不是紧凑格式的 JWS：Not enough segments".
        assert not ENGLISH_WORD.search(line), line
