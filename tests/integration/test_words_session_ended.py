"""A holder whose session has ended is told so in Chinese as "此会话已结束" (this session has ended), not "此会话已退出"
(this session has exited/logged out), which reads as though the holder had left rather than the session being over."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.integration.holder_support import signed_in_holder


async def test_a_token_of_an_ended_session_is_refused_with_this_session_has_ended_in_chinese(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    ended = await client.delete("/v1/holder/sessions/current", headers=holder.headers)
    assert ended.status_code == 204

    zh = await client.get("/v1/holder/certificates", headers=holder.headers | {"Accept-Language": "zh-CN"})

    assert zh.status_code == 401
    assert zh.headers["content-language"] == "zh-CN"
    assert zh.json()["detail"] == "此会话已结束，请重新登录"
    en = await client.get("/v1/holder/certificates", headers=holder.headers, params={"lang": "en"})
    assert en.json()["detail"] == "this session has ended: sign in again"
