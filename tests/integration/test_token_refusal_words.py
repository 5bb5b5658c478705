"""A token refused for a reason PyJWT words (another issuer, another audience, a missing claim, a bad signature…) is
explained in the reader's language, naming the claim at fault and what to do: before, ``str()`` of PyJWT's error went
into the detail, so a Chinese reader whose token came from a run on another port read "访问令牌无效：Invalid issuer".
The identity provider's tokens are said the same way (tests/integration/test_holder_idp.py)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from tests.checks import assert_problem
from tests.factories import admin_token, bearer
from tests.integration.auth_support import forge, fresh_claims, sign

HAN = re.compile(r"[\u4e00-\u9fff]")
CLAIM_NAMES = {"iss", "aud", "jti", "iat", "nbf", "exp", "sub", "alg"}


def english_words(text: str) -> list[str]:
    """Words of three letters or more that are not a claim's name: English left in a Chinese text."""
    return [word for word in re.findall(r"[A-Za-z]{3,}", text) if word not in CLAIM_NAMES]


@pytest.mark.parametrize(
    ("changes", "english", "chinese"),
    [
        ({"iss": "http://127.0.0.1:9999"}, "its iss claim names another issuer", "iss 声明指向另一签发方"),
        ({"aud": "another-registry"}, "its aud claim names another audience", "aud 声明指向另一受众"),
        ({"jti": None}, "it lacks the jti claim", "缺少 jti 声明"),
        ({"nbf": int(time.time()) + 3600}, "it is not valid yet", "尚未生效"),
    ],
    ids=["issuer-of-another-run", "audience", "missing-jti", "not-yet-valid"],
)
async def test_a_refused_access_token_is_explained_in_the_readers_language(
    app: FastAPI, client: httpx.AsyncClient, changes: dict[str, Any], english: str, chinese: str
) -> None:
    token = await forge(app, await admin_token(app, client), **changes)

    said = assert_problem(await client.get("/v1/clients", headers=bearer(token)), 401)
    in_chinese = assert_problem(
        await client.get("/v1/clients", headers={**bearer(token), "Accept-Language": "zh-CN"}), 401
    )

    assert said["detail"].startswith(f"the access token is not valid: {english}"), said
    assert in_chinese["detail"].startswith("访问令牌无效："), in_chinese
    assert chinese in in_chinese["detail"], in_chinese
    assert not english_words(in_chinese["detail"]), in_chinese


async def test_a_token_signed_with_another_key_is_explained_without_pyjwts_english(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    kid = (await forge(app, admin)).split(".")[0]  # the registry's own header (its kid), another key's signature
    forged = sign(fresh_claims(admin), Ed25519PrivateKey.generate())
    token = kid + "." + forged.split(".", 1)[1]

    problem = assert_problem(
        await client.get("/v1/clients", headers={**bearer(token), "Accept-Language": "zh-CN"}), 401
    )

    assert "签名无法用签发方的密钥验证" in problem["detail"], problem
    assert not english_words(problem["detail"]), problem
