"""/readyz in the legacy state (API clients of an earlier version, nothing sealed: the master key unconfirmed) stays
ready — the token request that confirms the key must reach a process — but says so, and how to confirm it, while
checkpoints, the PDF signing root, holder sign-in and peer questions answer 503. Once the key is confirmed it says
nothing more, and a check costs the one statement it always did."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from registry.config import Settings
from tests.conftest import MASTER_KEY
from tests.integration.test_master_key_unproven_first_key import (
    UNPROVEN,
    _a_client_of_an_earlier_version,
    _client_token,
    _refused,
    _started,
    _under,
)

UNCONFIRMED = (
    "the master key has not been confirmed since an upgrade: until one of the database's API clients gets a token "
    "(POST /oauth/token) or an operator runs `registry keys confirm-master` on the server, checkpoints, the PDF "
    "signing root, holder sign-in and questions from peer nodes answer 503"
)
UNCONFIRMED_ZH = (
    "主密钥自升级以来尚未确认：在数据库中已有的某个 API 客户端获取令牌（POST /oauth/token）或运维人员在服务器上运行 "
    "`registry keys confirm-master` 之前，检查点、PDF 签名根证书、持证人登录和来自对等节点的查询均答复 503"
)


async def test_readyz_says_the_master_key_is_unconfirmed_and_how_to_confirm_it_while_staying_ready(
    settings: Settings,
) -> None:
    await _a_client_of_an_earlier_version(settings)
    async with _started(_under(settings, MASTER_KEY)) as http:
        _refused(await http.get("/v1/transparency/checkpoint"), UNPROVEN)
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        assert ready.json()["master_key"] == {"state": "unconfirmed", "detail": UNCONFIRMED}
        in_chinese = await http.get("/readyz", headers={"Accept-Language": "zh"})
        assert in_chinese.json()["master_key"] == {"state": "unconfirmed", "detail": UNCONFIRMED_ZH}

        assert (await _client_token(http)).status_code == 200  # confirms the key
        confirmed = await http.get("/readyz")
        assert confirmed.status_code == 200, confirmed.text
        assert "master_key" not in confirmed.json()
        assert (await http.get("/v1/transparency/checkpoint")).status_code == 200


async def test_a_bound_database_says_nothing_of_the_key_and_each_check_costs_one_statement(settings: Settings) -> None:
    async with _started(settings) as http:
        statements: list[str] = []

        def seen(*args: Any) -> None:
            statements.append(str(args[2]))

        engine = http._transport.app.state.engine.sync_engine  # type: ignore[attr-defined]
        event.listen(engine, "before_cursor_execute", seen)
        try:
            for _ in range(3):
                ready = await http.get("/readyz")
                assert ready.status_code == 200, ready.text
                assert "master_key" not in ready.json()
            statements.clear()
            assert (await http.get("/readyz")).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    assert [statement for statement in statements if "signing_keys" in statement or "api_clients" in statement] == []
    assert len([statement for statement in statements if statement.strip().upper().startswith("SELECT")]) == 1
