"""`registry verify-credential` speaks the reader's language, as every other command does (the locale: `LANG`,
`LC_MESSAGES`, `LC_ALL`): each step's name, its outcome and why, the verdict and the `claims` line; and when a fetch
fails, why it failed is said from registry/http_reasons.py, never httpx's own English ("[Errno 111] Connection
refused"). Under an English locale the report keeps the form scripts read (`signature  PASS`, `RESULT     VALID`)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from registry.credentials.sources import read
from registry.i18n import translate
from tests.factories import bearer, issued_certificate
from tests.integration.server_support import free_port
from tests.integration.test_import_language import CHINESE, ENGLISH
from tests.integration.test_languages import HAN
from tests.integration.test_offline import Files, _credential, _run, _setup, _write

ZH_STEPS = ("格式", "签名", "密钥", "有效期", "状态")
ENGLISH_WORDS = ("PASS", "FAIL", "UNKNOWN", "SKIPPED", "RESULT", "claims", "verifies", "validity window", "clear")


def _args(files: Files) -> list[str]:
    args = [str(files.credential), "--jwks", str(files.jwks)]
    for path in files.lists:
        args += ["--status-list", str(path)]
    return args


def _cells(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _labelled(out: str) -> dict[str, tuple[str, str]]:
    """Each line's label → (outcome, the rest), read by terminal cells: the label column is 10 cells wide."""
    lines: dict[str, tuple[str, str]] = {}
    for line in out.splitlines():
        label, _, rest = line.partition(" ")
        lines[label] = (rest.split()[0], rest.strip().partition(" ")[2]) if rest.split() else ("", "")
    return lines


async def _revoke(client: httpx.AsyncClient, issuer: str, number: str) -> None:
    revoked = await client.post(
        f"/v1/certificates/{number}/revoke",
        json={"reason": "falsified papers", "reason_code": "fraud"},
        headers=bearer(issuer),
    )
    assert revoked.status_code == 200, revoked.text


async def test_a_valid_credential_is_reported_in_chinese_under_a_chinese_locale(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Found: under LANG=zh_CN.UTF-8 the whole report was English ("signature  PASS     EdDSA signature by … verifies",
    "RESULT     VALID") although `registry import`, `audit verify` and the command's own errors follow the locale."""
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    files = await _write(client, tmp_path, await _credential(client, issuer, certificate["number"]))

    zh = await _run(*_args(files), env=CHINESE)

    assert zh.code == 0, zh.out + zh.err
    lines = zh.out.splitlines()
    assert [line.split()[0] for line in lines] == ["所述", *ZH_STEPS, "结果"], zh.out
    said = _labelled(zh.out)
    assert [said[step][0] for step in ZH_STEPS] == ["通过"] * 5, zh.out
    assert said["结果"][0] == "有效", zh.out
    for line in lines:
        assert HAN.search(line.partition(" ")[2]), line  # the words after the label are Chinese too
        assert not any(word in line for word in ENGLISH_WORDS), line
    assert "签名验证通过" in said["签名"][1], zh.out
    assert "凭证自述" in lines[0], zh.out
    # The outcome column starts at the 12th terminal cell on every line, as in English: a Chinese label is padded by
    # the cells a terminal gives it (two a character), not by its characters.
    for line in lines[1:]:
        assert _cells(line[: line.index(said[line.split()[0]][0])]) == 11, line

    en = await _run(*_args(files), env=ENGLISH)
    assert en.code == 0, en.out + en.err
    assert en.steps == {step: "PASS" for step in ("format", "signature", "key", "dates", "status")}, en.out
    assert "RESULT     VALID" in en.out
    assert en.out.startswith("claims     "), en.out
    assert not HAN.search(en.out.split("\n", 1)[1]), en.out  # only the credential's own words (its claims) are Chinese


async def test_a_revoked_credential_says_why_in_chinese(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Found: "status     FAIL     message status 0x2 at index …: the certificate is revoked" under a Chinese locale."""
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    credential = await _credential(client, issuer, certificate["number"])
    await _revoke(client, issuer, certificate["number"])
    files = await _write(client, tmp_path, credential)

    zh = await _run(*_args(files), env=CHINESE)

    assert zh.code == 1, zh.out + zh.err
    said = _labelled(zh.out)
    assert said["状态"][0] == "未通过", zh.out
    assert "证书状态为已吊销" in said["状态"][1], zh.out
    assert said["结果"][0] == "无效", zh.out
    assert "revoked" not in zh.out, zh.out
    assert "NOT VALID" not in zh.out, zh.out

    en = await _run(*_args(files), env=ENGLISH)
    assert "the certificate is revoked" in en.out, en.out
    assert "RESULT     NOT VALID" in en.out, en.out


def _signed_elsewhere() -> str:
    """A credential-shaped JWS (its format step passes) whose keys must be fetched."""
    key = Ed25519PrivateKey.generate()
    claims = {"iss": "https://registry.test/v1/issuers/X", "issuer": "https://registry.test/v1/issuers/X"}
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "k1", "typ": "vc+jwt"})


async def test_a_registry_that_cannot_be_reached_is_unknown_with_a_chinese_reason(tmp_path: Path) -> None:
    """Found: "JWKS http://… 无法获取：[Errno 111] Connection refused": httpx's English inside the Chinese sentence."""
    credential = tmp_path / "credential.vc.jwt"
    credential.write_text(_signed_elsewhere(), encoding="utf-8")
    down = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"  # nothing listens there

    zh = await _run(str(credential), "--jwks", down, env=CHINESE)

    assert zh.code == 1, zh.out + zh.err
    said = _labelled(zh.out)
    assert said["签名"] == ("无法确认", f"JWKS {down} 无法获取：服务器拒绝连接"), zh.out
    assert said["结果"] == ("无法确认", f"— JWKS {down} 无法获取：服务器拒绝连接"), zh.out
    assert [said[step][0] for step in ("密钥", "有效期", "状态")] == ["跳过"] * 3, zh.out
    assert "Errno" not in zh.out, zh.out
    assert "refused" not in zh.out, zh.out

    en = await _run(str(credential), "--jwks", down, env=ENGLISH)
    assert f"RESULT     UNKNOWN — JWKS {down} could not be fetched: the server refused the connection" in en.out
    assert "Errno" not in en.out, en.out


async def test_an_address_httpx_cannot_parse_is_refused_in_one_line_not_a_traceback(tmp_path: Path) -> None:
    """Found: `registry verify-credential 'http://[::1/c.jwt'` ended in a traceback (httpx.InvalidURL is no
    httpx.HTTPError, so the fetch's ``except`` let it through)."""
    for env, expected in (
        (CHINESE, "错误：输入 http://[::1/c.jwt 无法获取：该地址不是有效的网址"),
        (ENGLISH, "error: input http://[::1/c.jwt could not be fetched: the address is not a valid URL"),
    ):
        outcome = await _run("http://[::1/c.jwt", env=env)
        assert outcome.code == 2, outcome.out + outcome.err
        assert outcome.err.strip() == expected, outcome.err


async def test_an_answer_other_than_200_is_said_as_the_servers_answer() -> None:
    """Found: "状态列表 … 无法获取：HTTP 404" — now a sentence in the reader's language, from the same home."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="not here")

    source = "https://registry.test/v1/status-lists/BJ-1-message"
    with httpx.Client(transport=httpx.MockTransport(answer)) as http:
        text, problem = read(source, http)

    assert text is None
    assert problem is not None
    assert problem == f"status list {source} could not be fetched: the server answered HTTP 404"
    assert translate(problem, "zh") == f"状态列表 {source} 无法获取：服务器应答 HTTP 404"
